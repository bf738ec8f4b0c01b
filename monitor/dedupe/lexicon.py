"""Word lists of the story layer: transliteration, stopwords, month names, event nouns and a
gazetteer with multilingual aliases. Data in their native scripts; no I/O."""

from __future__ import annotations

# Russian (and Ukrainian / Belarusian letters) to Latin, close to the BGN/PCGN romanisation
# that news agencies use (Лавров -> lavrov, Джакарта -> dzhakarta).
CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i",
    "ї": "yi", "є": "ye", "ґ": "g", "ў": "u",
}  # fmt: skip

STOPWORDS = """
the and for that with this from have has had was were are been being will would could should
shall can may might must not but its his her their they them there then than also into onto
over under about after before between during while which who whom whose what when where why
how all any each other some such only own same very just more most many much said says say
our ours your yours you she him himself herself itself themselves ourselves upon within
without against among per via one two three new last year years first second next since
still even both well back made make like being does did doing done out off again further
once here these those because until above below down ago yet according told

и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее
мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть
был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть
надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда
кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас
были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот
через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед
иногда лучше чуть том нельзя такой им более всегда конечно всю между также который которые
которых которая которой этих года году год также заявил сообщил отметил время

der die das und ist nicht sich mit auf für dem den des ein eine einer eines einem einen
von zu im auch als wie bei aus nach noch bis wird werden wurde wurden sind war hat haben
oder aber über vor zum zur durch sein seine ihre ihr sie wir uns mehr nur schon kann
dass diese dieser dieses jetzt sehr hier

les des une pour dans par sur est qui que pas plus avec sont son ses aux mais ont leur
cette comme été tout elle nous vous fait être entre sans après avant aussi dont

los las del una por con para que como más pero sus fue son ser han sobre entre este esta
también desde hasta porque cuando todo

il lo la gli le di da per con che una non sono nel nella dei delle degli alla alle anche
come più questo questa ha hanno dal dalla

się nie jest oraz przez jak ale dla tak był była było być jego jej ich ten tym które
który która także tylko może

bir ve ile bu da de için olarak olan gibi daha çok kadar sonra ancak ise veya

yang dan di ke dari untuk dengan pada dalam ini itu adalah akan juga tidak oleh telah
sebagai atau bahwa karena tersebut para kata

và của là có cho các được với trong này những một đã không người đến về tại theo khi
cũng như để từ đó nhiều sẽ vào ra năm ngày tháng
"""

# Month names (and Russian genitive forms) in the languages the monitor and the evaluation see.
# Capitalised words that are titles, days or generic event words, not names: "President",
# "Tuesday", "Summit" in a headline say nothing about which event it is.
NOT_NAMES = """
president prime minister ministers secretary general deputy foreign affairs ministry chairman
chairwoman chair head leader leaders state states summit summits meeting meetings conference
forum session talks visit official officials spokesperson spokesman spokeswoman ambassador
embassy government council committee delegation national international republic federation
people peoples kingdom news live update updates photo video read more day monday tuesday
wednesday thursday friday saturday sunday today tomorrow yesterday the this that these those
президент премьер министр министра министром глава главы генеральный генсек секретарь
саммит саммита саммите встреча встречи переговоры визит заседание форум посол председатель
понедельник вторник среда четверг пятница суббота воскресенье
tổng thống thủ tướng bộ trưởng ngoại giao chủ tịch hội nghị cấp cao thượng đỉnh
presiden menteri luar negeri perdana ketua kepala konferensi pertemuan tingkat tinggi ktt
senin selasa rabu kamis jumat sabtu minggu
"""

# Words that make a lead naming two people the report of their meeting (a bilateral), cut to
# the story layer's stems: met/meets, talks, bilateral; встреча, переговоры, двусторонний;
# Bulgarian среща, двустранна; Ukrainian зустріч, переговори; hội đàm, gặp, song phương;
# bertemu, bilateral.
MEETING_WORDS = """
met meets meeting talks bilateral sidelines
встреч встрет встретил переговор двусторон
среща срещна двустранна зустріч зустрівся переговори двосторонн
gặp
bertemu pertemuan bilateral sela
محادثات مباحثات التقى يلتقي لقاء ملاقات मुलाकात वार्ता द्विपक्षीय
"""
# Words of meeting that are phrases of several syllables (Vietnamese writes one syllable a
# word: "hội" alone is in "hội nghị", any conference, so it is not a word of meeting).
MEETING_PHRASES = ("hội đàm", "hội kiến", "gặp gỡ", "song phương", "bên lề", "tiếp kiến")

MONTHS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "january jan января январь januar janvier enero gennaio januari stycznia ocak",
        "february feb февраля февраль februar fevrier febrero febbraio februari lutego subat",
        "march mar марта март marz mars marzo maret marca mart",
        "april apr апреля апрель avril abril aprile kwietnia nisan",
        "may мая май mai mayo maggio mei maja mayis",
        "june jun июня июнь juni juin junio giugno czerwca haziran",
        "july jul июля июль juli juillet julio luglio lipca temmuz",
        "august aug августа август aout agosto agustus sierpnia agustos",
        "september sep sept сентября сентябрь septembre septiembre settembre wrzesnia eylul",
        "october oct октября октябрь oktober octobre octubre ottobre pazdziernika ekim",
        "november nov ноября ноябрь novembre noviembre listopada kasim",
        "december dec декабря декабрь dezember decembre diciembre dicembre desember grudnia aralik",
    ),
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _num

# Nouns naming a numbered event ("16th ... Meeting", "Hội nghị ... lần thứ 16") -> event type.
EVENT_NOUNS: dict[str, str] = {}
for _type, _words in (
    ("meeting", "meeting meetings som arsom совещание совещания встреча заседание nghi hop "
     "pertemuan rapat treffen reunion riunione spotkanie"),
    ("summit", "summit саммит саммита ktt gipfel sommet cumbre vertice szczyt"),
    ("session", "session сессия сессии phien sidang sitzung sesion sessione sesja"),
    ("round", "round раунд раунда vong putaran runde ronda"),
    ("forum", "forum форум форума"),
    ("conference", "conference конференция конференции konferensi konferenz conferencia"),
    ("anniversary", "anniversary годовщина годовщины летие niem ulang jahrestag aniversario"),
):  # fmt: skip
    for _word in _words.split():
        EVENT_NOUNS[_word] = _type

# Several words that together name a kind of event (matched case-folded, before the nouns):
# Vietnamese "hội nghị" alone is any meeting, "hội nghị cấp cao" / "thượng đỉnh" a summit.
EVENT_PHRASES: dict[str, str] = {
    "hội nghị cấp cao": "summit",
    "hội nghị thượng đỉnh": "summit",
    "встреча на высшем уровне": "summit",
    "konferensi tingkat tinggi": "summit",
}

# Phrases naming the kind of gathering a headline or lead reports, in the languages the monitor
# sees (matched latinised, as word prefixes: "саммит" also finds "саммита"). With the grouping
# and the venue they make a report's event signature, which is the same in every language.
MEETING_KINDS: dict[str, str] = {
    "summit": "summit; leaders' meeting; leaders meeting; leaders' summit; leaders' week; "
    "council of heads of state; economic leaders; совет глав; совета глав; "
    "hội đồng nguyên thủ; các nhà lãnh đạo kinh tế; саммит; "
    "встреча на высшем уровне; саміт; hội nghị cấp cao; hội nghị thượng đỉnh; thượng đỉnh; "
    "tuần lễ cấp cao; ktt; konferensi tingkat tinggi; sommet; cumbre; cúpula; gipfel; vertice; "
    "szczyt; قمة; القمة; سمٹ; سربراہی اجلاس; शिखर सम्मेलन; 首脳会議; 首脑会议; 峰会; 峰會; 정상회의",
    "bilateral": "bilateral; talks with; met with; meets with; meet with; hold talks; held talks; "
    "переговоры; встреча с; встретился; встретятся; двусторонн; hội đàm; hội kiến; gặp; "
    "bertemu; pertemuan bilateral; محادثات; التقى; يلتقي; ملاقات; मुलाकात; द्विपक्षीय; 会談; "
    "会谈; 會談; 会晤; 회담",
    "ministerial": "foreign ministers; foreign minister's meeting; ministerial; "
    "министров иностранных дел; смид; совещание министров; bộ trưởng ngoại giao asean; "
    "hội nghị bộ trưởng; pertemuan menteri; menteri luar negeri asean; "
    "ministros de relaciones exteriores; ministres des affaires étrangères; وزراء الخارجية; "
    "وزرائے خارجہ; विदेश मंत्रियों; 外相会議; 外长会; 外長會; 외교장관회의",
}

# The groupings whose meetings recur (the "org:" part of an event signature); other
# organisations named in a headline (the UN, a university) say nothing about which meeting.
GROUPINGS = frozenset(
    ("ASEAN", "BRICS", "G20", "G7", "APEC", "SCO", "EAEU", "Quad", "GCC", "NATO",
     "European Union", "East Asia Summit", "ASEAN Regional Forum", "African Union")
)  # fmt: skip

# Key names for Russia–ASEAN coverage: canonical name -> (kind, weight, aliases).
# Weight: how much sharing the entity says about "same event"; ASEAN and Russia are in almost
# every item this monitor sees, so they count little.
GAZETTEER: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "Lavrov": ("person", 2.0, ("Lavrov", "Лавров", "Lavrốp", "Lavrop")),
    "Lim Jock Hoi": (
        "person",
        3.0,
        ("Lim Jock Hoi", "Лим Джок Хой", "Лим Джок Хоя", "Лим Джок Хою", "Лим Джок Хоем"),
    ),
    "Kao Kim Hourn": ("person", 3.0, ("Kao Kim Hourn", "Као Ким Хорн")),
    "Putin": ("person", 1.5, ("Putin", "Путин", "Pu-tin")),
    "Morgulov": ("person", 2.0, ("Morgulov", "Моргулов", "Mô-gu-lốp")),
    "Rudenko": ("person", 2.0, ("Rudenko", "Руденко")),
    "Myasnikovich": ("person", 2.0, ("Myasnikovich", "Мясникович")),
    "Ngo Duc Manh": ("person", 2.0, ("Ngo Duc Manh", "Ngô Đức Mạnh", "Нго Дык Мань")),
    "Jose Tavares": ("person", 2.0, ("Jose Tavares", "Хосе Таварес")),
    "Retno Marsudi": ("person", 2.0, ("Retno Marsudi", "Ретно Марсуди")),
    "Saleumxay Kommasith": ("person", 2.0, ("Saleumxay Kommasith", "Салеумсай Коммасит")),
    "ASEAN": ("org", 0.3, ("ASEAN", "АСЕАН", "Association of Southeast Asian Nations",
                           "Hiệp hội các quốc gia Đông Nam Á")),
    "Russia": ("place", 0.3, ("Russia", "Russian Federation", "Россия", "Российская Федерация",
                              "Nga", "Liên bang Nga", "Rusia", "Rusland", "Russland")),
    "Moscow": ("place", 1.5, ("Moscow", "Москва", "Mát-xcơ-va", "Matxcova", "Moskow", "Moskau",
                              "Moscou", "Moscú", "Mosca")),
    "Vientiane": ("place", 1.5, ("Vientiane", "Вьентьян", "Viêng Chăn", "Vientian")),
    "Jakarta": ("place", 1.5, ("Jakarta", "Джакарта", "Gia-các-ta", "Giacacta")),
    "Bali": ("place", 1.5, ("Bali", "Бали")),
    "Hanoi": ("place", 1.5, ("Hanoi", "Ханой", "Hà Nội")),
    "Bangkok": ("place", 1.5, ("Bangkok", "Бангкок", "Băng Cốc")),
    "Singapore": ("place", 1.0, ("Singapore", "Сингапур", "Xinh-ga-po", "Singapura")),
    "Kuala Lumpur": ("place", 1.5, ("Kuala Lumpur", "Куала-Лумпур")),
    "Manila": ("place", 1.5, ("Manila", "Манила")),
    "Phnom Penh": ("place", 1.5, ("Phnom Penh", "Пномпень", "Phnôm Pênh")),
    "Naypyidaw": ("place", 1.5, ("Naypyidaw", "Нейпьидо", "Nay Pyi Taw")),
    "Vladivostok": ("place", 1.5, ("Vladivostok", "Владивосток", "Vla-đi-vô-xtốc")),
    "St Petersburg": ("place", 1.5, ("St Petersburg", "Saint Petersburg", "Санкт-Петербург",
                                     "Петербург", "Xanh Pê-téc-bua")),
    "Sochi": ("place", 1.5, ("Sochi", "Сочи", "Xô-chi")),
    "Kazan": ("place", 1.5, ("Kazan", "Казань")),
    "Laos": ("place", 0.8, ("Laos", "Лаос", "Lào", "Lao PDR")),
    "Vietnam": ("place", 0.8, ("Vietnam", "Viet Nam", "Вьетнам", "Việt Nam")),
    "Indonesia": ("place", 0.8, ("Indonesia", "Индонезия", "In-đô-nê-xi-a")),
    "Malaysia": ("place", 0.8, ("Malaysia", "Малайзия", "Ma-lai-xi-a")),
    "Thailand": ("place", 0.8, ("Thailand", "Таиланд", "Thái Lan")),
    "Philippines": ("place", 0.8, ("Philippines", "Филиппины", "Phi-líp-pin", "Filipina")),
    "Cambodia": ("place", 0.8, ("Cambodia", "Камбоджа", "Campuchia", "Kamboja")),
    "Myanmar": ("place", 0.8, ("Myanmar", "Мьянма")),
    "Brunei": ("place", 0.8, ("Brunei", "Бруней")),
    "EAEU": ("org", 0.8, ("EAEU", "EEU", "Eurasian Economic Union", "ЕАЭС",
                          "Евразийский экономический союз", "Liên minh Kinh tế Á-Âu")),
    "EEC": ("org", 0.8, ("EEC", "Eurasian Economic Commission", "ЕЭК")),
    # The full name in each language, so that its first word is not read as the city
    # ("саммит Шанхайской организации сотрудничества" is in Tianjin, not Shanghai).
    "SCO": ("org", 0.8, ("SCO", "Shanghai Cooperation Organisation",
                         "Shanghai Cooperation Organization", "ШОС",
                         "Шанхайская организация сотрудничества",
                         "Шанхайската организация за сътрудничество",
                         "Шанхайська організація співробітництва",
                         "Tổ chức Hợp tác Thượng Hải", "Organisasi Kerja Sama Shanghai",
                         "Organisasi Kerjasama Shanghai")),
    "East Asia Summit": ("org", 0.8, ("East Asia Summit", "EAS", "ВАС", "Восточноазиатский саммит",
                                      "Cấp cao Đông Á")),
    "ASEAN Regional Forum": ("org", 0.8, ("ASEAN Regional Forum", "ARF", "АРФ",
                                          "Региональный форум АСЕАН", "Diễn đàn Khu vực ASEAN")),
    "MGIMO": ("org", 1.0, ("MGIMO", "МГИМО")),
    "SOM": ("org", 1.0, ("Senior Officials Meeting", "Senior Officials’ Meeting", "SOM", "ARSOM",
                         "СДЛ", "совещание старших должностных лиц",
                         "quan chức cấp cao", "pejabat senior")),
    "United Nations": ("org", 0.5, ("United Nations", "UN", "ООН", "Liên hợp quốc", "PBB")),
    # The groupings and partners these sources report on besides ASEAN-Russia, and the
    # capitals and usual summit venues of their members, so that reports of one meeting in
    # different languages share names, and two meetings in different cities differ in place.
    "BRICS": ("org", 0.8, ("BRICS", "БРИКС", "Бриксом")),
    "G20": ("org", 0.8, ("G20", "G-20", "Group of Twenty", "Группа двадцати", "Большая двадцатка",
                         "«Группа двадцати»", "Nhóm G20", "Nhóm 20")),
    "G7": ("org", 0.8, ("G7", "G-7", "Group of Seven", "Группа семи", "Большая семерка")),
    "APEC": ("org", 0.8, ("APEC", "АТЭС", "Asia-Pacific Economic Cooperation")),
    "European Union": ("org", 0.8, ("European Union", "EU", "Евросоюз", "Европейский союз", "ЕС",
                                    "Liên minh châu Âu", "Uni Eropa")),
    "NATO": ("org", 0.8, ("NATO", "НАТО")),
    "Xi Jinping": ("person", 1.5, ("Xi Jinping", "Xi", "Си Цзиньпин", "Tập Cận Bình")),
    "Wang Yi": ("person", 1.5, ("Wang Yi", "Ван И", "Vương Nghị")),
    "Li Qiang": ("person", 1.5, ("Li Qiang", "Ли Цян", "Lý Cường")),
    "Modi": ("person", 1.5, ("Narendra Modi", "Modi", "Моди", "Нарендра Моди")),
    "Jaishankar": ("person", 1.5, ("Jaishankar", "Джайшанкар")),
    "Lula": ("person", 1.5, ("Lula da Silva", "Lula", "Лула", "Лула да Силва")),
    "Ramaphosa": ("person", 1.5, ("Ramaphosa", "Рамафоса")),
    "Erdogan": ("person", 1.5, ("Erdogan", "Erdoğan", "Эрдоган")),
    "Blinken": ("person", 1.5, ("Blinken", "Блинкен")),
    "Rubio": ("person", 1.5, ("Rubio", "Рубио")),
    "Trump": ("person", 1.5, ("Trump", "Трамп")),
    "Biden": ("person", 1.5, ("Biden", "Байден")),
    "Guterres": ("person", 1.5, ("Guterres", "Гутерриш", "Гутерреш")),
    "Tokayev": ("person", 1.5, ("Tokayev", "Токаев")),
    "Mirziyoyev": ("person", 1.5, ("Mirziyoyev", "Мирзиёев")),
    "Prabowo": ("person", 1.5, ("Prabowo Subianto", "Prabowo", "Прабово")),
    "Jokowi": ("person", 1.5, ("Joko Widodo", "Jokowi", "Джоко Видодо")),
    "Anwar Ibrahim": ("person", 1.5, ("Anwar Ibrahim", "Анвар Ибрагим")),
    "Beijing": ("place", 1.5, ("Beijing", "Пекин", "Bắc Kinh", "Peking")),
    "Shanghai": ("place", 1.5, ("Shanghai", "Шанхай", "Thượng Hải")),
    "Tianjin": ("place", 1.5, ("Tianjin", "Тяньцзинь", "Thiên Tân")),
    "Tokyo": ("place", 1.5, ("Tokyo", "Токио", "Tô-ky-ô")),
    "Seoul": ("place", 1.5, ("Seoul", "Сеул", "Xơ-un")),
    "New Delhi": ("place", 1.5, ("New Delhi", "Нью-Дели", "Niu Đê-li", "Delhi", "Дели")),
    "Goa": ("place", 1.5, ("Goa", "Гоа")),
    "Washington": ("place", 1.5, ("Washington", "Вашингтон", "Oa-sinh-tơn", "Washington DC")),
    "New York": ("place", 1.5, ("New York", "Нью-Йорк", "Niu Oóc")),
    "Brussels": ("place", 1.5, ("Brussels", "Брюссель", "Bruxelles", "Brussel")),
    "Munich": ("place", 1.5, ("Munich", "Мюнхен", "München", "Munchen")),
    "Paris": ("place", 1.5, ("Paris", "Париж")),
    "London": ("place", 1.5, ("London", "Лондон", "Luân Đôn")),
    "Berlin": ("place", 1.5, ("Berlin", "Берлин")),
    "Rome": ("place", 1.5, ("Rome", "Рим", "Roma")),
    "Geneva": ("place", 1.5, ("Geneva", "Женева", "Genève", "Jenewa")),
    "Astana": ("place", 1.5, ("Astana", "Астана", "Nur-Sultan", "Нур-Султан")),
    "Samarkand": ("place", 1.5, ("Samarkand", "Самарканд")),
    "Tashkent": ("place", 1.5, ("Tashkent", "Ташкент")),
    "Bishkek": ("place", 1.5, ("Bishkek", "Бишкек")),
    "Dushanbe": ("place", 1.5, ("Dushanbe", "Душанбе")),
    "Minsk": ("place", 1.5, ("Minsk", "Минск")),
    "Johannesburg": ("place", 1.5, ("Johannesburg", "Йоханнесбург", "Giô-han-nết-xbớc")),
    "Rio de Janeiro": ("place", 1.5, ("Rio de Janeiro", "Рио-де-Жанейро", "Rio")),
    "Brasilia": ("place", 1.5, ("Brasilia", "Brasília", "Бразилиа")),
    "Buenos Aires": ("place", 1.5, ("Buenos Aires", "Буэнос-Айрес")),
    "Osaka": ("place", 1.5, ("Osaka", "Осака")),
    "Hiroshima": ("place", 1.5, ("Hiroshima", "Хиросима")),
    "Busan": ("place", 1.5, ("Busan", "Пусан")),
    "Canberra": ("place", 1.5, ("Canberra", "Канберра")),
    "Ankara": ("place", 1.5, ("Ankara", "Анкара")),
    "Istanbul": ("place", 1.5, ("Istanbul", "Стамбул")),
    "Riyadh": ("place", 1.5, ("Riyadh", "Эр-Рияд")),  # not "Riyad": Russian "ряд" folds to it
    "Tehran": ("place", 1.5, ("Tehran", "Тегеран")),
    "China": ("place", 0.8, ("China", "Китай", "КНР", "Trung Quốc", "Tiongkok", "Cina")),
    "India": ("place", 0.8, ("India", "Индия", "Ấn Độ")),
    "Japan": ("place", 0.8, ("Japan", "Япония", "Nhật Bản", "Jepang")),
    "United States": ("place", 0.8, ("United States", "US", "USA", "США", "Hoa Kỳ", "Mỹ",
                                     "Amerika Serikat")),
    "South Korea": ("place", 0.8, ("South Korea", "Republic of Korea", "Южная Корея",
                                   "Hàn Quốc", "Korea Selatan")),
    "Brazil": ("place", 0.8, ("Brazil", "Бразилия", "Brasil")),
    "South Africa": ("place", 0.8, ("South Africa", "ЮАР", "Южная Африка", "Nam Phi",
                                    "Afrika Selatan")),
    "Kazakhstan": ("place", 0.8, ("Kazakhstan", "Казахстан")),
    "Uzbekistan": ("place", 0.8, ("Uzbekistan", "Узбекистан")),
    # More groupings, leaders and venues, with their Russian, Vietnamese and Indonesian names.
    # Not "Четверка": its stem is that of "четверг" (Thursday), so every Russian report of a
    # Thursday meeting named the Quad.
    "Quad": ("org", 0.8, ("Quad", "Quadrilateral Security Dialogue", "Четырехсторонний диалог",
                          "QUAD", "Bộ Tứ")),
    "GCC": ("org", 0.8, ("GCC", "Gulf Cooperation Council", "ССАГПЗ",
                         "Совет сотрудничества арабских государств Персидского залива",
                         "Hội đồng Hợp tác vùng Vịnh", "Dewan Kerja Sama Teluk")),
    "African Union": ("org", 0.8, ("African Union", "Африканский союз", "Liên minh châu Phi",
                                   "Uni Afrika")),
    "Pham Minh Chinh": ("person", 1.5, ("Pham Minh Chinh", "Phạm Minh Chính", "Фам Минь Тинь",
                                        "Фам Минь Чинь")),
    "Vo Van Thuong": ("person", 1.5, ("Vo Van Thuong", "Võ Văn Thưởng", "Во Ван Тхыонг")),
    "Luong Cuong": ("person", 1.5, ("Luong Cuong", "Lương Cường", "Лыонг Кыонг")),
    "To Lam": ("person", 1.5, ("To Lam", "Tô Lâm", "То Лам")),
    "Kishida": ("person", 1.5, ("Fumio Kishida", "Kishida", "Кисида", "Kishida Fumio")),
    "Ishiba": ("person", 1.5, ("Shigeru Ishiba", "Ishiba", "Исиба")),
    "Albanese": ("person", 1.5, ("Anthony Albanese", "Albanese", "Албаниз", "Албанезе")),
    "Macron": ("person", 1.5, ("Emmanuel Macron", "Macron", "Макрон")),
    "Scholz": ("person", 1.5, ("Olaf Scholz", "Scholz", "Шольц")),
    "Meloni": ("person", 1.5, ("Giorgia Meloni", "Meloni", "Мелони")),
    "Trudeau": ("person", 1.5, ("Justin Trudeau", "Trudeau", "Трюдо")),
    "Carney": ("person", 1.5, ("Mark Carney", "Carney", "Карни")),
    "Zelensky": ("person", 1.5, ("Zelensky", "Zelenskyy", "Зеленский", "Зеленський")),
    "Lee Jae-myung": ("person", 1.5, ("Lee Jae-myung", "Lee Jae Myung", "Ли Чжэ Мён",
                                      "Lee Jae-myung")),
    "Yoon Suk Yeol": ("person", 1.5, ("Yoon Suk Yeol", "Yoon Suk-yeol", "Юн Сок Ёль")),
    "Oreshkin": ("person", 1.5, ("Oreshkin", "Орешкин")),
    "Sydney": ("place", 1.5, ("Sydney", "Сидней", "Xít-ni")),
    "Melbourne": ("place", 1.5, ("Melbourne", "Мельбурн", "Men-bơn")),
    "Ottawa": ("place", 1.5, ("Ottawa", "Оттава")),
    "Lima": ("place", 1.5, ("Lima", "Лима")),
    "San Francisco": ("place", 1.5, ("San Francisco", "Сан-Франциско", "Xan Phran-xi-xcô")),
    "Gyeongju": ("place", 1.5, ("Gyeongju", "Кёнджу", "Кенджу", "Kyongju")),
    "Labuan Bajo": ("place", 1.5, ("Labuan Bajo", "Лабуан-Баджо")),
    "Canada": ("place", 0.8, ("Canada", "Канада")),
    "Australia": ("place", 0.8, ("Australia", "Австралия", "Úc")),
    "Peru": ("place", 0.8, ("Peru", "Перу", "Pê-ru")),
    "Italy": ("place", 0.8, ("Italy", "Италия", "Italia")),
    "France": ("place", 0.8, ("France", "Франция", "Pháp", "Prancis")),
    "Germany": ("place", 0.8, ("Germany", "Германия", "Đức", "Jerman")),
    "United Kingdom": ("place", 0.8, ("United Kingdom", "UK", "Britain", "Великобритания",
                                      "Vương quốc Anh", "Inggris")),
}  # fmt: skip

# Abbreviations of a partner that are only read next to a grouping and a dash, as written
# (case-sensitive): Indonesian "KTT ASEAN-AS" (Amerika Serikat), English "U.S.-ASEAN Summit".
# Alone, "AS" and "as" are a common word.
PARTNER_ABBREVIATIONS: dict[str, str] = {"AS": "United States", "U.S.": "United States"}

# Names of the gazetteer in Arabic script (Arabic, then Urdu) and in Devanagari (Hindi): added
# to the aliases above. These scripts have no capitals, so a short alias counts wherever it
# stands as a word ("شی جن پھنگ", Xi Jinping in Urdu). Leaders, groupings and summit venues
# only: countries and the capitals most world news names (China, Russia, India, the United
# States; Washington, Moscow, Beijing, Riyadh) made unrelated Arabic reports look alike
# (SemEval training split, Arabic pairs: Pearson 0.348 without them, 0.265 with them).
SCRIPT_ALIASES: dict[str, tuple[str, ...]] = {
    "Xi Jinping": ("شي جين بينغ", "شي جين بينج", "شی جن پھنگ", "شی جن پنگ", "शी जिनपिंग"),
    "Putin": ("بوتين", "پیوٹن", "پوتن", "पुतिन"),
    "Modi": ("مودي", "مودی", "मोदी"),
    "Lavrov": ("لافروف", "لاوروف", "लावरोव"),
    "Wang Yi": ("وانغ يي", "وانگ ای", "वांग यी"),
    "Trump": ("ترامب", "ٹرمپ", "ट्रंप", "ट्रम्प"),
    "Biden": ("بايدن", "بائیڈن", "बाइडेन"),
    "Blinken": ("بلينكن", "بلنکن", "ब्लिंकन"),
    "Jaishankar": ("جيشانكار", "جے شنکر", "जयशंकर"),
    "Lula": ("لولا",),
    "Ramaphosa": ("رامافوزا", "رامافوسا"),
    "BRICS": ("بريكس", "برکس", "ब्रिक्स"),
    "SCO": ("منظمة شنغهاي للتعاون", "شنگھائی تعاون تنظیم", "शंघाई सहयोग संगठन"),
    "ASEAN": ("آسيان", "الآسيان", "آسیان", "आसियान"),
    "G20": ("مجموعة العشرين", "जी20", "जी-20"),
    "APEC": ("أبيك", "ایپک", "एपेक"),
    "GCC": ("مجلس التعاون الخليجي", "مجلس التعاون لدول الخليج العربية"),
    "Kazan": ("قازان", "کازان", "कज़ान", "कजान"),
    "Tianjin": ("تيانجين", "تیانجن", "تھیانجن", "तियानजिन"),
    "Johannesburg": ("جوهانسبرغ", "جوہانسبرگ", "जोहान्सबर्ग"),
    "Rio de Janeiro": ("ريو دي جانيرو", "ریو ڈی جنیرو", "रियो डी जेनेरियो"),
    "New Delhi": ("نيودلهي", "نئی دہلی", "नई दिल्ली"),
    "Jakarta": ("جاكرتا", "جکارتہ", "जकार्ता"),
    "Vientiane": ("فيينتيان", "وینتیان", "वियनतियाने"),
    "Kuala Lumpur": ("كوالالمبور", "کوالالمپور", "कुआलालंपुर"),
    "Astana": ("أستانا", "آستانہ", "अस्ताना"),
    "Lima": ("ليما", "لیما", "लीमा"),
    "Gyeongju": ("غيونغجو", "گیونگجو", "ग्योंगजू"),
    "San Francisco": ("سان فرانسيسكو", "سان فرانسسکو", "सैन फ्रांसिस्को"),
}
for _name, _extra in SCRIPT_ALIASES.items():
    _kind, _w, _aliases = GAZETTEER[_name]
    GAZETTEER[_name] = (_kind, _w, _aliases + _extra)

# Names of the gazetteer as Japanese, Chinese and Korean write them: text without spaces
# between words, so they are found inside a run of characters ("日本とASEAN特別首脳会議"),
# the longest first. Alias -> canonical name of GAZETTEER. Only aliases of two characters or
# more that are not also common words ("米" is rice, "米国" the United States; Korean 경주 is
# also a race and 인도 a pavement, so Gyeongju and India have no Korean alias here).
UNSPACED_NAMES: dict[str, str] = {
    "日本": "Japan", "일본": "Japan",
    "東京": "Tokyo", "东京": "Tokyo", "도쿄": "Tokyo",
    "中国": "China", "中國": "China", "중국": "China",
    "北京": "Beijing", "베이징": "Beijing",
    "岸田": "Kishida", "기시다": "Kishida",
    "東南アジア諸国連合": "ASEAN", "东盟": "ASEAN", "東協": "ASEAN", "아세안": "ASEAN",
    "習近平": "Xi Jinping", "习近平": "Xi Jinping", "시진핑": "Xi Jinping",
    "韓国": "South Korea", "韩国": "South Korea", "한국": "South Korea",
    "インド": "India", "印度": "India",
    "インドネシア": "Indonesia", "印度尼西亚": "Indonesia", "인도네시아": "Indonesia",
    "モディ": "Modi", "莫迪": "Modi",
    "ロシア": "Russia", "俄罗斯": "Russia", "러시아": "Russia",
    "プーチン": "Putin", "普京": "Putin", "푸틴": "Putin",
    "モスクワ": "Moscow", "莫斯科": "Moscow", "모스크바": "Moscow",
    "カザン": "Kazan", "喀山": "Kazan",
    "ベトナム": "Vietnam", "越南": "Vietnam", "베트남": "Vietnam",
    "ジャカルタ": "Jakarta", "雅加达": "Jakarta",
    "米国": "United States", "美国": "United States", "미국": "United States",
    "バイデン": "Biden", "拜登": "Biden", "바이든": "Biden",
    "トランプ": "Trump", "特朗普": "Trump", "트럼프": "Trump",
    "上海協力機構": "SCO", "上海合作组织": "SCO", "上海": "Shanghai",
    "王毅": "Wang Yi",
    "ソウル": "Seoul", "首尔": "Seoul", "서울": "Seoul",
    "釜山": "Busan", "부산": "Busan",
    "慶州": "Gyeongju", "庆州": "Gyeongju",  # not 경주: also Korean for a race
    "天津": "Tianjin", "톈진": "Tianjin",
    "マレーシア": "Malaysia", "马来西亚": "Malaysia", "말레이시아": "Malaysia",
    "クアラルンプール": "Kuala Lumpur", "吉隆坡": "Kuala Lumpur",
    "ラオス": "Laos", "老挝": "Laos", "라오스": "Laos",
    "ラブロフ": "Lavrov", "拉夫罗夫": "Lavrov",
    "ハノイ": "Hanoi", "河内": "Hanoi", "하노이": "Hanoi",
    "ペルー": "Peru", "秘鲁": "Peru", "페루": "Peru",
}  # fmt: skip
