"""Near-duplicate layer: shingles, MinHash signatures, an in-memory LSH index. No I/O.

Decisions (see docs/dedupe.md for how the numbers were chosen):

* Shingles are 3-word windows over the normalised text (case-folded, accents folded,
  punctuation dropped); scripts written without spaces (CJK, Thai, Lao, Khmer, Myanmar)
  contribute one unit per character, so their shingles are character 3-grams.
* A signature is a 128-permutation `datasketch` MinHash (affine32 scheme: 32-bit values).
* Candidates come from LSH banding with 2-row bands, one band per permutation (overlapping
  pairs), which finds pairs down to a Jaccard of about 0.15-0.2 (a teaser holding a quarter
  of the article) with high probability; a 32-bit key per band and item.
* A candidate is confirmed when the estimated Jaccard reaches `JACCARD_THRESHOLD`, or when
  the estimated containment of the smaller set in the larger one reaches
  `CONTAINMENT_THRESHOLD` (|A∩B| = J(|A|+|B|)/(1+J)); containment needs `MIN_MATCHES`
  agreeing permutations so that a tiny text cannot match by chance.
* Same-source rule (Feedly's lesson): ministries reuse boilerplate across different
  releases, so a near-duplicate of an earlier item *from the same source* is not counted;
  within one source only the exact layer (GUID, URL, text hash) decides. Seeds have no
  source and always count.
* Memory: signatures live in one uint32 array (512 bytes per item); band keys live in a
  sorted uint32 array (plus int32 rows) and a dict of recent inserts, merged in batches. The caller
  bounds the index with `evict_before` (the retention window); seeds are never evicted.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from monitor.dedupe.minhash import LeanMinHash, MinHash

Kind = Literal["seed", "item"]

NUM_PERM = 128
SHINGLE_UNITS = 3
BANDS = NUM_PERM  # overlapping 2-row bands (see _band_keys)
ROWS = 2
JACCARD_THRESHOLD = 0.5
CONTAINMENT_THRESHOLD = 0.7
MIN_MATCHES = 10  # agreeing permutations (of 128) before containment is trusted
MIN_SHINGLES = 8  # fewer shingles than this: too short to judge; the index ignores it

_SEED = 1
_SCHEME = "affine32"
_FORMAT = struct.Struct("<BBHI")  # version, scheme code, num_perm, datasketch seed
_FORMAT_VERSION = 1
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME)

# Scripts written without spaces between words: one unit per character.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff]"
)
_WORD = re.compile(r"\w+")
_FOLD = str.maketrans({"đ": "d", "ð": "d", "ø": "o", "ł": "l", "ß": "ss", "ı": "i", "æ": "ae"})


def normalise_units(text: str) -> list[str]:
    """Text -> comparison units: folded words, or single characters for unspaced scripts."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).translate(_FOLD)
    units: list[str] = []
    for word in _WORD.findall(text):
        if _UNSPACED.search(word):
            units.extend(ch for ch in word if ch != "_")
        else:
            units.append(word)
    return units


def shingle(text: str) -> set[bytes]:
    """The set of 3-unit shingles of `text` (empty when the text is shorter than 3 units)."""
    units = normalise_units(text)
    k = SHINGLE_UNITS
    return {" ".join(units[i : i + k]).encode() for i in range(len(units) - k + 1)}


def make_signature(shingles: Iterable[bytes]) -> LeanMinHash:
    """A 128-permutation MinHash of a shingle set."""
    mh = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=_TEMPLATE.permutations, scheme=_SCHEME)
    mh.update_batch(list(shingles))
    return LeanMinHash(mh)


def sign_text(text: str) -> tuple[LeanMinHash, int]:
    """Signature and shingle-set size of a text: what `NearIndex.add/query` take."""
    shingles = shingle(text)
    return make_signature(shingles), len(shingles)


def signature_to_bytes(sig: LeanMinHash) -> bytes:
    """Compact, versioned bytes for the store: 8-byte header + 4 bytes per permutation."""
    values = np.asarray(sig.hashvalues, dtype="<u4")
    if len(values) != NUM_PERM or sig.scheme != _SCHEME:
        raise ValueError(f"expected a {NUM_PERM}-permutation {_SCHEME} signature")
    return _FORMAT.pack(_FORMAT_VERSION, 1, NUM_PERM, sig.seed) + values.tobytes()


def signature_from_bytes(data: bytes) -> LeanMinHash:
    """Inverse of `signature_to_bytes`; raises ValueError on bytes it did not write."""
    if len(data) < _FORMAT.size:
        raise ValueError("signature bytes too short")
    version, scheme, num_perm, seed = _FORMAT.unpack_from(data)
    body = data[_FORMAT.size :]
    if version != _FORMAT_VERSION or scheme != 1 or num_perm != NUM_PERM:
        raise ValueError(f"unsupported signature format {version}/{scheme}/{num_perm}")
    if len(body) != 4 * num_perm:
        raise ValueError("signature bytes have the wrong length")
    values = np.frombuffer(body, dtype="<u4").astype(np.uint32)
    return LeanMinHash(seed=seed, hashvalues=values, scheme=_SCHEME)


@dataclass(frozen=True, slots=True)
class NearMatch:
    """A confirmed near-duplicate and how it was decided."""

    kind: Kind
    ref: str  # seed file name or item URL
    similarity: float  # estimated Jaccard, or estimated containment of the smaller text
    method: Literal["minhash-jaccard", "minhash-containment"]
    threshold: float
    compared_with: str  # the index key of the matched entry
    jaccard: float
    containment: float

    def explain(self) -> str:
        """The decision in plain words."""
        what = "estimated Jaccard" if self.method == "minhash-jaccard" else "estimated containment"
        return (
            f"near-duplicate of {self.kind} {self.ref}: {what} {self.similarity:.2f} "
            f">= {self.threshold:.2f} (MinHash, {NUM_PERM} permutations, word 3-shingles; "
            f"compared with {self.compared_with}; Jaccard {self.jaccard:.2f}, "
            f"containment {self.containment:.2f})"
        )


# Band-key mixing: band b hashes the permutation values (b, b+1 mod NUM_PERM), so bands overlap
# and there are as many bands as permutations. The band number is mixed into the 32-bit key.
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xC2B2AE3D27D4EB4F)
_BAND_SALT = (np.arange(BANDS, dtype=np.uint64) * np.uint64(0x165667B19E3779F9)).astype(np.uint64)
_SHIFT = np.uint64(32)


def _band_keys(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """(n, NUM_PERM) uint32 -> (n, BANDS) uint32 band keys."""
    first = values.astype(np.uint64)
    second = np.roll(first, -1, axis=1)
    mixed = (first * _MIX_A + second * _MIX_B + _BAND_SALT) * _MIX_A  # wraps mod 2**64
    keys: npt.NDArray[np.uint32] = (mixed >> _SHIFT).astype(np.uint32)
    return keys


class NearIndex:
    """Signatures of seeds and stored items, queried for near-duplicates."""

    def __init__(self, *, merge_every: int = 512) -> None:
        self._merge_every = merge_every
        self._sigs = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self._sizes = np.zeros(0, dtype=np.int32)
        self._times = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._seed = np.zeros(0, dtype=bool)
        self._keys: list[str] = []
        self._refs: list[str] = []
        self._sources: list[str | None] = []
        self._interned: dict[str, str] = {}
        self._n = 0
        self._dead = 0
        self._main_keys = np.zeros(0, dtype=np.uint32)
        self._main_rows = np.zeros(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}
        self._recent_rows: list[int] = []

    def __len__(self) -> int:
        return self._n - self._dead

    def add(
        self,
        key: str,
        sig: LeanMinHash,
        *,
        kind: Kind,
        ref: str,
        source: str | None,
        at: datetime,
        size: int,
    ) -> None:
        """Index one signature. Texts under `MIN_SHINGLES` shingles are not indexed."""
        if size < MIN_SHINGLES:
            return
        row = self._n
        self._grow(row + 1)
        values = np.asarray(sig.hashvalues, dtype=np.uint32)
        self._sigs[row] = values
        self._sizes[row] = size
        self._times[row] = at.timestamp()
        self._alive[row] = True
        self._seed[row] = kind == "seed"
        self._keys.append(key)
        self._refs.append(ref)
        self._sources.append(self._interned.setdefault(source, source) if source else None)
        self._n += 1
        for band_key in _band_keys(values[None, :])[0].tolist():
            self._recent.setdefault(band_key, []).append(row)
        self._recent_rows.append(row)
        if len(self._recent_rows) >= self._merge_every:
            self._merge()

    def query(
        self, sig: LeanMinHash, *, source: str | None, size: int, exclude: str | None = None
    ) -> NearMatch | None:
        """The best confirmed near-duplicate of a text, seeds first; None if there is none.

        Entries from the same `source` are skipped (same-source rule); `exclude` skips an
        entry by key (an item compared with its own stored signature).
        """
        if size < MIN_SHINGLES or self._n == 0:
            return None
        values = np.asarray(sig.hashvalues, dtype=np.uint32)
        rows = self._candidates(_band_keys(values[None, :])[0])
        if len(rows) == 0:
            return None
        matches = (self._sigs[rows] == values).sum(axis=1)
        jaccard = matches / NUM_PERM
        sizes = self._sizes[rows].astype(np.float64)
        smaller = np.minimum(sizes, float(size))
        containment = np.minimum(1.0, jaccard * (sizes + size) / ((1.0 + jaccard) * smaller))
        by_j = jaccard >= JACCARD_THRESHOLD
        by_c = (containment >= CONTAINMENT_THRESHOLD) & (matches >= MIN_MATCHES)
        best: tuple[tuple[bool, float, float], NearMatch] | None = None
        for i in np.nonzero(by_j | by_c)[0].tolist():
            row = int(rows[i])
            is_seed = bool(self._seed[row])
            if self._keys[row] == exclude:
                continue
            if not is_seed and source is not None and self._sources[row] == source:
                continue
            j, c = float(jaccard[i]), float(containment[i])
            if by_j[i]:
                match = NearMatch(
                    "seed" if is_seed else "item",
                    self._refs[row],
                    round(j, 4),
                    "minhash-jaccard",
                    JACCARD_THRESHOLD,
                    self._keys[row],
                    round(j, 4),
                    round(c, 4),
                )
            else:
                match = NearMatch(
                    "seed" if is_seed else "item",
                    self._refs[row],
                    round(c, 4),
                    "minhash-containment",
                    CONTAINMENT_THRESHOLD,
                    self._keys[row],
                    round(j, 4),
                    round(c, 4),
                )
            # Seeds first (the item is then "known"), then the higher score, then the earlier.
            rank = (is_seed, match.similarity, -float(self._times[row]))
            if best is None or rank > best[0]:
                best = (rank, match)
        return best[1] if best else None

    def evict_before(self, at: datetime) -> int:
        """Forget items (never seeds) indexed with `at` before the cut-off; returns how many."""
        cutoff = at.timestamp()
        n = self._n
        drop = self._alive[:n] & ~self._seed[:n] & (self._times[:n] < cutoff)
        count = int(drop.sum())
        if count:
            self._alive[:n] &= ~drop
            self._dead += count
            if self._dead * 4 >= self._n:
                self._compact()
        return count

    def mark(self) -> int:
        """A point to `forget_since`: what is indexed now."""
        return self._n

    def forget_since(self, mark: int) -> int:
        """Forget every entry added after `mark` (a batch of decisions whose store write
        failed); returns how many. Entries are only marked dead, as eviction does."""
        n = self._n
        drop = self._alive[mark:n].copy()
        count = int(drop.sum())
        if count:
            self._alive[mark:n] = False
            self._dead += count
        return count

    # -- internals -------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = len(self._sizes)
        if need <= cap:
            return
        new = max(need, cap + cap // 4, 256)  # modest slack: 512 bytes a row
        self._sigs = np.resize(self._sigs, (new, NUM_PERM))
        self._sizes = np.resize(self._sizes, new)
        self._times = np.resize(self._times, new)
        self._alive = np.resize(self._alive, new)
        self._alive[cap:] = False
        self._seed = np.resize(self._seed, new)

    def _candidates(self, qkeys: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        lo = np.searchsorted(self._main_keys, qkeys, side="left")
        hi = np.searchsorted(self._main_keys, qkeys, side="right")
        counts = hi - lo
        total = int(counts.sum())
        parts: list[npt.NDArray[np.int64]] = []
        if total:
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            positions = starts + np.arange(total)
            parts.append(self._main_rows[positions].astype(np.int64))
        recent = [row for k in qkeys.tolist() for row in self._recent.get(k, ())]
        if recent:
            parts.append(np.asarray(recent, dtype=np.int64))
        if not parts:
            return np.zeros(0, dtype=np.int64)
        rows = np.unique(np.concatenate(parts))
        return rows[self._alive[rows]]

    def _merge(self) -> None:
        """Move recent band keys into the sorted arrays (one sort of the new batch + insert)."""
        if not self._recent_rows:
            return
        rows = np.asarray(self._recent_rows, dtype=np.int32)
        keys = _band_keys(self._sigs[rows]).ravel()
        krows = np.repeat(rows, BANDS)
        order = np.argsort(keys, kind="stable")
        keys, krows = keys[order], krows[order]
        at = np.searchsorted(self._main_keys, keys, side="right")
        self._main_keys = np.insert(self._main_keys, at, keys)
        self._main_rows = np.insert(self._main_rows, at, krows)
        self._recent = {}
        self._recent_rows = []

    def _compact(self) -> None:
        """Drop evicted rows and rebuild the band arrays from the surviving signatures."""
        self._merge()
        keep = np.nonzero(self._alive[: self._n])[0]
        self._sigs = self._sigs[keep].copy()
        self._sizes = self._sizes[keep].copy()
        self._times = self._times[keep].copy()
        self._seed = self._seed[keep].copy()
        self._alive = np.ones(len(keep), dtype=bool)
        idx = keep.tolist()
        self._keys = [self._keys[i] for i in idx]
        self._refs = [self._refs[i] for i in idx]
        self._sources = [self._sources[i] for i in idx]
        self._n = len(keep)
        self._dead = 0
        keys = _band_keys(self._sigs).ravel()
        rows = np.repeat(np.arange(self._n, dtype=np.int32), BANDS)
        order = np.argsort(keys, kind="stable")
        self._main_keys, self._main_rows = keys[order], rows[order]
