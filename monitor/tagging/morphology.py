"""Other written forms of rule terms, per language: Indonesian affixes, Vietnamese joined
syllables. No I/O.

Indonesian builds verbs and nouns from one base with prefixes and suffixes: the base
"ekspor" (export) is written mengekspor (to export), diekspor (exported), pengekspor (an
exporter), pengeksporan; "investasi" berinvestasi, menginvestasikan; "bom" mengebom,
pengeboman; "ekonomi" perekonomian. A news text uses whichever form its sentence needs, so a
term written as one form also matches the others (docs/tagging.md, "Morphology"). The rule
runs one way, from the form written to its affixed forms, never back to a root: "kesehatan"
(health) is not reduced to "sehat" (healthy), which is what a lemmatiser would do.

Vietnamese writes one syllable per word; the words of a term are its syllables. Folding
already matches them with and without diacritics and across hyphens ("Bộ trưởng" = "Bo
truong", "Đông-Nam Á" = "Đông Nam Á"); a name or compound of two or three syllables is also
written joined in Latin-script usage that Vietnamese texts quote ("Hà Nội" / "Hanoi",
"Mê Kông" / "Mekong", "Đà Nẵng" / "Danang"), so such a term also matches its syllables
written together.
"""

from __future__ import annotations

import re

_VOWELS = "aeiou"
_ONE_SYLLABLE = re.compile(r"^[^aeiou]*[aeiou]+[^aeiou]*$")
_LETTERS = re.compile(r"^[a-z]{3,}$")
# Suffixes each prefix takes: verbs -kan / -i, nouns of process and state -an.
_VERB_SUFFIXES = ("", "kan", "i")


def _nasal(prefix: str, base: str) -> tuple[str, ...]:
    """meN- / peN- before `base`, with the nasal the base's first sound takes. A dropped
    first consonant (tanam -> menanam) is also written kept, as loanwords keep it
    (target -> menargetkan, but produksi -> memproduksi)."""
    first = base[0]
    if _ONE_SYLLABLE.match(base):  # bom -> mengebom, tik -> mengetik
        return (f"{prefix}nge{base}",)
    if first in _VOWELS or first in "gh":
        return (f"{prefix}ng{base}",)
    if first == "k":
        return (f"{prefix}ng{base[1:]}", f"{prefix}ng{base}")
    if first in "bfv":
        return (f"{prefix}m{base}",)
    if first == "p":
        return (f"{prefix}m{base[1:]}", f"{prefix}mp{base[1:]}")
    if first in "dcjz":
        return (f"{prefix}n{base}",)
    if first == "t":
        return (f"{prefix}n{base[1:]}", f"{prefix}nt{base[1:]}")
    if first == "s":
        return (f"{prefix}ny{base[1:]}", f"{prefix}ns{base[1:]}")
    return (f"{prefix}{base}",)  # l, m, n, r, w, y: melatih, merusak, mewabah


def _ber(base: str) -> tuple[str, ...]:
    """ber- is be- before r and before a first syllable in -er (bekerja, beternak)."""
    if base[0] == "r" or base[1:3] == "er":
        return (f"be{base}", f"ber{base}")
    return (f"ber{base}",)


def indonesian_forms(word: str) -> tuple[str, ...]:
    """The affixed forms of one folded Indonesian word, without the word itself:
    meN-/di-/ter- with -kan or -i (verbs), ber- (intransitive verbs), peN- (the doer) and
    peN-/per-/ke- ... -an (nouns of process, field and state). Words shorter than 3 letters
    or with a digit get none; forms that are not words never occur in a text and cost
    nothing but an automaton key."""
    if not _LETTERS.match(word):
        return ()
    stems = [*_nasal("me", word), f"di{word}", f"ter{word}"]
    forms = [stem + suffix for stem in stems for suffix in _VERB_SUFFIXES]
    forms += _ber(word)
    doers = _nasal("pe", word)
    forms += doers
    forms += [f"{doer}an" for doer in doers]
    forms += [f"per{word}an", f"ke{word}an"]
    return tuple(dict.fromkeys(f for f in forms if f != word))


def term_forms(folded: str, lang: str) -> tuple[str, ...]:
    """Other written forms of a folded term (words separated by one space) that its
    language's affix rule gives: for Indonesian, the affixed forms of its first word (the
    head: "kerja sama" -> "bekerja sama"), rest unchanged. A term whose first word ends in
    `*` already names its own forms. For Vietnamese, a term of two or three syllables also
    matches them written together ("ha noi" -> "hanoi"). Other languages: none."""
    if lang == "vi":
        syllables = folded.split(" ")
        joined = "".join(syllables)
        if 2 <= len(syllables) <= 3 and joined.isalpha() and len(joined) >= 5:
            return (joined,)
        return ()
    if lang != "id":
        return ()
    head, _, rest = folded.partition(" ")
    if head.endswith("*"):
        return ()
    tail = f" {rest}" if rest else ""
    return tuple(form + tail for form in indonesian_forms(head))
