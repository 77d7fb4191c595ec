"""A synthetic private dental clinic, as touch records of wire format v1.

``generate_clinic`` simulates one clinic (two branches in Moscow, all times +03:00) for
``days`` days and yields plain JSON-able dicts, one per touch, that ``parse_touch``
accepts. The same seed always gives the same records. The story, and the effects it
plants so that the engine has something to find:

* **Awareness.** Prospects come from six channels with very different conversion:
  ``search_ads`` (expensive, converts well), ``seo`` (cheap, converts well), ``social``
  (middling), ``display`` (cheap clicks that rarely call), ``email`` (partner
  newsletters) and ``offline`` (flyers and radio, no click, a call to a tracking number).
  A web prospect starts with an ``ad_click`` that carries only an ``anonymous_id``.
  Word of mouth (``referral``) is only ever started by a satisfied patient, who names a
  friend; the friend's journey starts with a ``referral`` touch (``referrer`` = the
  patient's ``customer_id``) and books most often of all.
* **Contact.** About 90% of first inquiries are calls (``phone`` only, channel from the
  call-tracking number); the rest are website forms (``anonymous_id`` + ``phone``), either
  online bookings or callback requests. Five administrators answer; **Irina misses about
  30% of calls**, the others about 5%. A missed call gets a callback only sometimes; many
  of those callers try again, the rest are lost.
* **Booking -> visit.** A booking (``customer_id`` + ``phone``, which links the
  identities) is scheduled a few days ahead and usually confirmed by SMS. Most patients
  consent to SMS reminders, and most of those get one the day before; **patients without
  a reminder no-show about three times as often**. Some bookings are cancelled (by the
  patient or the clinic), some are rescheduled, some no-shows are called and rebooked.
* **First visit -> treatment.** The doctor of the first visit decides much: whether a
  ``treatment_plan`` is proposed and accepted, how satisfied the patient is and whether
  they come back. **Dr. Petrov** keeps patients; **Dr. Volkov** proposes plans that are
  declined, explains little and rarely sees a patient again. Accepted plans become a
  course of visits, which some patients abandon; surgery is followed by a care message.
  Half the first-time patients get a thank-you message, which helps a little.
* **Retention and advocacy.** Months later, recall messages (to patients who allow
  marketing) and recall visits; promotions and birthday greetings. Surveys and public
  reviews (unhappy patients write more often; many negative reviews stay unanswered).
* **Compliance seed.** A few marketing messages go to patients who never granted
  marketing consent or who withdrew it.
* **Families.** Some parents book a child: a second ``customer_id`` with the parent's
  phone.
* **Money.** Visits, payments and plans in RUB; one ``ad_spend`` per paid channel per
  day (no ``customer``), with the day's clicks equal to the ``ad_click`` touches of that
  channel and day.

Touches after the end of the simulated period are left out, like an export taken that
day. Memory stays constant: touches are built and yielded one prospect at a time.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

__all__ = ["DEFAULT_START", "MSK", "generate_clinic", "write_jsonl"]

MSK = timezone(timedelta(hours=3), "MSK")
DEFAULT_START = datetime(2025, 1, 1, tzinfo=MSK)
CURRENCY = "RUB"
SITE = "https://smile-clinic.example"

Record = dict[str, Any]
_Pending = tuple[datetime, str, dict[str, str] | None, str, str, Record]


@dataclass(frozen=True, slots=True)
class _Channel:
    share: float  # of prospects (friends sent by patients come on top)
    contact: float  # of clicks that end in a call or a form
    book: float  # of first conversations that end in a booking
    cpc: int  # rubles per click
    daily: int  # fixed rubles per day for a clinic of 3000 prospects a year
    campaign: str
    spend_source: str
    utm: tuple[str, str] | None  # utm_source, utm_medium
    ctr: float  # clicks per impression
    tracking_number: str


CHANNELS: dict[str, _Channel] = {
    "search_ads": _Channel(0.30, 0.65, 0.74, 1900, 0, "search_dental_moscow", "yandex_direct",
                           ("yandex", "cpc"), 0.06, "+74951500101"),
    "social": _Channel(0.18, 0.45, 0.46, 220, 0, "vk_smile_2025", "vk_ads",
                       ("vk", "social"), 0.008, "+74951500102"),
    "seo": _Channel(0.17, 0.62, 0.72, 0, 1200, "organic", "seo_agency",
                    None, 0.04, "+74951500103"),
    "display": _Channel(0.10, 0.30, 0.33, 160, 0, "display_banners", "yandex_direct",
                        ("yandex", "display"), 0.003, "+74951500104"),
    "email": _Channel(0.07, 0.55, 0.62, 40, 300, "partner_newsletter", "email_service",
                      ("newsletter", "email"), 0.03, "+74951500105"),
    "offline": _Channel(0.18, 1.0, 0.55, 0, 4000, "flyers_and_radio", "marketing_budget",
                        None, 1.0, "+74951500106"),
}
_CHANNEL_NAMES = tuple(CHANNELS)
_CHANNEL_CUM = tuple(accumulate(c.share for c in CHANNELS.values()))
REFERRAL_BOOK = 0.88
RECALL_BOOK = 0.95
MAIN_NUMBER = "+74951500100"

KEYWORDS = (
    ("dental implants price", "/implants"),
    ("dentist near me", "/"),
    ("teeth whitening moscow", "/whitening"),
    ("painless tooth treatment", "/treatment"),
    ("children's dentist", "/children"),
    ("dental hygiene cost", "/prices"),
)
AD_GROUPS = ("women_25_40", "parents", "seniors_55_plus", "retargeting", "lookalike")

ADMINISTRATORS: dict[str, float] = {  # name -> share of inbound calls missed
    "Anna": 0.05,
    "Olga": 0.04,
    "Irina": 0.30,
    "Maria": 0.06,
    "Elena": 0.05,
}
_ADMIN_NAMES = tuple(ADMINISTRATORS)
FORM_SHARE = 0.15
CALLBACK_RATE = 0.20
PICKS_UP = 0.75
RETRY_RATE = 0.15
MAX_CALLS = 3


@dataclass(frozen=True, slots=True)
class _Doctor:
    weight: float  # share of adult first visits
    plan: float  # first visits that end with a proposed plan
    accept: float  # proposed plans accepted by a satisfied patient
    satisfied: float
    recall: float  # satisfied patients who come back months later
    price: float  # price factor
    explains: float  # explains the problem, complications and guarantees


DOCTORS: dict[str, _Doctor] = {
    "Dr. Petrov": _Doctor(0.22, 0.78, 0.75, 0.92, 0.65, 1.15, 0.92),
    "Dr. Ivanova": _Doctor(0.22, 0.72, 0.66, 0.86, 0.55, 1.0, 0.85),
    "Dr. Smirnov": _Doctor(0.20, 0.66, 0.58, 0.82, 0.48, 1.0, 0.78),
    "Dr. Kuznetsova": _Doctor(0.18, 0.62, 0.52, 0.80, 0.42, 0.95, 0.75),
    "Dr. Volkov": _Doctor(0.18, 0.55, 0.25, 0.52, 0.15, 1.10, 0.35),
    "Dr. Sokolova": _Doctor(0.0, 0.50, 0.68, 0.90, 0.58, 1.0, 0.88),  # children
}
_ADULT_DOCTORS = tuple(name for name, d in DOCTORS.items() if d.weight)
_DOCTOR_CUM = tuple(accumulate(DOCTORS[name].weight for name in _ADULT_DOCTORS))
CHILD_DOCTOR = "Dr. Sokolova"
BRANCHES = ("Tverskaya", "Maryino")

PRICES: dict[str, int] = {
    "consultation": 1500,
    "child check-up": 1200,
    "check-up": 1500,
    "professional hygiene": 5500,
    "caries treatment": 6500,
    "root canal treatment": 14000,
    "crown": 28000,
    "implant": 45000,
    "whitening": 15000,
    "periodontal treatment": 9000,
    "fissure sealing": 2500,
    "braces": 95000,
}
_Plan = tuple[tuple[str, ...], int]  # services, stages


@dataclass(frozen=True, slots=True)
class _Portrait:
    weight: float
    ages: tuple[int, int]
    female: float
    incomes: tuple[str, ...]
    social: tuple[str, ...]
    family: tuple[str, ...]
    problems: tuple[str, ...]
    fears: tuple[str, ...]
    first_services: tuple[str, ...]
    plans: tuple[_Plan, ...]


PORTRAITS: dict[str, _Portrait] = {
    "young_professional": _Portrait(
        0.38, (24, 38), 0.68, ("middle", "middle", "high"),
        ("office worker", "manager", "freelancer"), ("single", "married, no children"),
        ("whitening", "caries", "sensitive teeth"), ("pain", "hidden costs", "lost time"),
        ("consultation", "consultation", "professional hygiene"),
        ((("professional hygiene", "whitening"), 2), (("caries treatment",), 2),
         (("root canal treatment", "crown"), 3)),
    ),
    "family": _Portrait(
        0.37, (32, 50), 0.64, ("low", "middle", "middle", "high"),
        ("employee", "manager", "entrepreneur"),
        ("married, 1 child", "married, 2 children", "single parent"),
        ("caries", "bleeding gums", "toothache"), ("pain", "price", "time off work"),
        ("consultation",),
        ((("caries treatment",), 2), (("root canal treatment", "crown"), 3),
         (("periodontal treatment",), 3)),
    ),
    "senior": _Portrait(
        0.25, (55, 78), 0.56, ("low", "middle", "high"),
        ("retired", "working pensioner"), ("married", "widowed"),
        ("missing teeth", "loose dentures", "toothache"),
        ("price", "complications", "surgery", "pain"), ("consultation",),
        ((("implant", "crown"), 4), (("root canal treatment", "crown"), 3),
         (("periodontal treatment",), 3)),
    ),
    "child": _Portrait(
        0.0, (4, 14), 0.5, (), ("schoolchild",), ("lives with parents",),
        ("check-up", "bite", "caries"), ("dentist", "pain"), ("child check-up",),
        ((("fissure sealing", "caries treatment"), 2), (("braces",), 6)),
    ),
}
_ADULT_PORTRAITS = tuple(name for name, p in PORTRAITS.items() if p.weight)
_PORTRAIT_CUM = tuple(accumulate(PORTRAITS[name].weight for name in _ADULT_PORTRAITS))
CHILD_RATE = 0.08

FEMALE_NAMES = ("Ekaterina", "Natalia", "Svetlana", "Tatiana", "Yulia", "Daria", "Ksenia", "Polina")
MALE_NAMES = ("Alexey", "Dmitry", "Sergey", "Andrey", "Ivan", "Mikhail", "Pavel", "Nikolai")
SURNAMES = ("Morozov", "Novikov", "Lebedev", "Orlov", "Zaitsev", "Pavlov", "Semenov", "Belov",
            "Tarasov", "Bogdanov", "Vinogradov", "Golubev")
DISTRICTS = ("Tverskoy", "Presnensky", "Khamovniki", "Basmanny", "Maryino", "Lyublino",
             "Kapotnya", "Pechatniki")
MOBILE_CODES = ("03", "05", "06", "09", "10", "15", "16", "17", "19", "25", "26", "29", "36",
                "58", "62", "63", "64", "65", "77", "85", "99")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

REMINDER_CONSENT = 0.88
REMINDER_COVERAGE = 0.70
CONFIRMATION_RATE = 0.80
CARE_RATE = 0.60
SURGERY = ("implant", "root canal treatment")
MARKETING_SMS = 0.55
MARKETING_EMAIL = 0.60
WITHDRAWAL = 0.08
STRAY_MARKETING = 0.015  # a marketing message sent without consent: the compliance seed
CANCEL_RATE = 0.07
NO_SHOW_REMINDED = 0.05
NO_SHOW_UNREMINDED = 0.17
REBOOK_RATE = 0.40
THANK_YOU_RATE = 0.50
DROP_OUT = 0.07
SURVEY_RATE = 0.30
REFER_RATE = 0.20
PROMOTIONS = ((40, "spring_hygiene"), (110, "whitening_may"), (160, "summer_checkup"),
              (250, "autumn_implants"), (335, "new_year_gift"))
PROMO_REACH = 0.6

DECLINE_REASONS = ("price", "second opinion", "not now", "fear of treatment", "no time")
PATIENT_CANCEL = ("changed plans", "feels better", "illness", "price", "chose another clinic")
CLINIC_CANCEL = ("doctor ill", "schedule change", "equipment failure")
GOOD_REVIEWS = ("Painless and quick, thank you!", "The doctor explained everything and "
                "showed the X-ray.", "Clean clinic, friendly staff.",
                "Спасибо доктору, всё прошло без боли!")
BAD_REVIEWS = ("Waited 40 minutes past my appointment time.", "The doctor did not explain what "
               "he was doing or why.", "The final bill was much higher than the quote.",
               "Nobody called me back after the treatment.",
               "Врач не объяснил план лечения, цена завышена.")
MESSAGE_SOURCES = {"sms": "sms_gateway", "email": "email_service", "messenger": "messenger"}
BOOKING_CHANNELS = {"phone": "phone", "online": "web", "walk_in": "clinic"}


def generate_clinic(
    *, seed: int = 7, patients: int = 3000, start: datetime | None = None, days: int = 365,
    recall_held_out: Callable[[str], bool] | None = None,
) -> Iterator[Record]:
    """Yield touches roughly in occurred_at order per patient (global order does not matter).

    ``patients`` counts prospects, friends sent by patients included; children booked
    by a parent come on top. Ad spend follows the prospects' touches.
    ``recall_held_out(customer_id)``: patients the recall worklist holds out get no recall
    message (the clinic keeps the holdout), so the demo's outreach uplift can be measured.
    """
    if patients < 0 or days < 1:
        raise ValueError("patients must be >= 0 and days >= 1")
    first = DEFAULT_START if start is None else start
    if first.tzinfo is None or first.utcoffset() is None:
        raise ValueError("start needs a timezone offset, e.g. +03:00")
    return _Clinic(seed, patients, first.astimezone(MSK), days, recall_held_out).run()


def write_jsonl(path: str | Path, touches: Iterable[Record]) -> int:
    """Write one JSON object per line to ``path`` and return how many were written."""
    count = 0
    with Path(path).open("wb") as out:
        for touch in touches:
            out.write(orjson.dumps(touch, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count


def _money(rubles: int) -> dict[str, str]:
    return {"amount": f"{rubles}.00", "currency": CURRENCY}


def _round100(value: float) -> int:
    return int(round(value / 100.0)) * 100


@dataclass(slots=True)
class _Person:
    idx: int
    channel: str
    first_at: datetime
    phone: str
    anonymous_id: str | None
    portrait: str
    branch: str
    referrer: str | None = None
    customer_id: str | None = None
    email: str | None = None
    registered_at: datetime | None = None
    reminders: bool = False
    marketing: tuple[str, ...] = ()
    withdrawn_at: datetime | None = None
    satisfied: bool = False
    name: str = ""
    female: bool = False
    birthday: tuple[int, int] = (1, 1)

    def known(self) -> dict[str, str]:
        return {"customer_id": self.customer_id or "", "phone": self.phone}

    def patient(self) -> dict[str, str]:
        return {"customer_id": self.customer_id or ""}


@dataclass(frozen=True, slots=True)
class _Lead:
    at: datetime
    admin: str | None
    via: str
    scheduled: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Care:
    doctor: str
    services: tuple[str, ...]
    amount: int
    first: bool
    plan_id: str | None = None


@dataclass
class _Clinic:
    seed: int
    patients: int
    start: datetime
    days: int
    recall_held_out: Callable[[str], bool] | None = None
    rng: random.Random = field(init=False)
    end: datetime = field(init=False)
    batch: list[_Pending] = field(default_factory=list)
    friends: deque[_Person] = field(default_factory=deque)
    clicks: dict[tuple[str, int], int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    people: int = 0
    seq: int = 0
    phone_offset: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.end = self.start + timedelta(days=self.days)
        self.phone_offset = self.rng.randrange(10_000_000)

    # -- the run ---------------------------------------------------------------------

    def run(self) -> Iterator[Record]:
        for _ in range(self.patients):
            person = self.friends.popleft() if self.friends else self._prospect()
            self._journey(person)
            yield from self._flush()
        yield from self._ad_spend()

    def _flush(self) -> Iterator[Record]:
        self.batch.sort(key=itemgetter(0))
        for at, kind, customer, channel, source, props in self.batch:
            self.seq += 1
            record: Record = {"event_id": f"demo-{self.seed}-{self.seq}", "type": kind,
                              "occurred_at": at.isoformat()}
            if customer is not None:
                record["customer"] = customer
            record.update(channel=channel, source=source, properties=props)
            yield record
        self.batch.clear()

    def _emit(self, kind: str, at: datetime, customer: dict[str, str] | None,
              channel: str, source: str, props: Record) -> None:
        if at < self.end:
            self.batch.append((at, kind, customer, channel, source, props))

    def _next(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = n
        return f"{prefix}{n:06d}"

    # -- people and time ---------------------------------------------------------------

    def _prospect(self) -> _Person:
        rng = self.rng
        channel = rng.choices(_CHANNEL_NAMES, cum_weights=_CHANNEL_CUM)[0]
        at = self.start + timedelta(days=rng.randrange(self.days), minutes=rng.randrange(420, 1440))
        anonymous = None if channel == "offline" else f"anon-{rng.getrandbits(64):016x}"
        return self._person(channel, at, anonymous)

    def _person(self, channel: str, at: datetime, anonymous: str | None,
                referrer: str | None = None, portrait: str | None = None) -> _Person:
        rng = self.rng
        self.people += 1
        n = self.people
        digits = (n * 7_919_201 + self.phone_offset) % 10_000_000  # a bijection: phones are unique
        phone = f"+79{MOBILE_CODES[n % len(MOBILE_CODES)]}{digits:07d}"
        kind = portrait or rng.choices(_ADULT_PORTRAITS, cum_weights=_PORTRAIT_CUM)[0]
        female = rng.random() < PORTRAITS[kind].female
        return _Person(n, channel, at, phone, anonymous, kind, rng.choice(BRANCHES), referrer,
                       name=self._name(female, rng.choice(SURNAMES)), female=female,
                       birthday=(rng.randint(1, 12), rng.randint(1, 28)))

    def _name(self, female: bool, surname: str) -> str:
        first = self.rng.choice(FEMALE_NAMES if female else MALE_NAMES)
        return f"{first} {surname}{'a' if female else ''}"

    def _office(self, t: datetime) -> datetime:
        """The first moment at or after ``t`` when the front desk works (09:00-21:00)."""
        if t.hour < 9:
            return t.replace(hour=9, minute=self.rng.randrange(60))
        if t.hour >= 21:
            return (t + timedelta(days=1)).replace(hour=9, minute=self.rng.randrange(60))
        return t

    def _days_later(self, t: datetime, lo: int, hi: int) -> datetime:
        """Between ``lo`` and ``hi`` days after ``t``, while the front desk works."""
        later = t + timedelta(days=self.rng.randint(lo, hi), hours=self.rng.randint(0, 8))
        return self._office(later)

    def _slot(self, after: datetime, lo: int, hi: int) -> datetime:
        day = after.replace(hour=9, minute=0, second=0) + timedelta(days=self.rng.randint(lo, hi))
        return day + timedelta(minutes=30 * self.rng.randrange(22))

    # -- awareness and contact ---------------------------------------------------------

    def _journey(self, p: _Person) -> None:
        contact_at = self._awareness(p)
        if contact_at is None:
            return
        book = REFERRAL_BOOK if p.channel == "referral" else CHANNELS[p.channel].book
        if p.anonymous_id and self.rng.random() < FORM_SHARE:
            lead = self._form(p, contact_at, book)
        else:
            lead = self._inquiry(p, contact_at, p.channel, book)
        if lead is not None:
            self._patient(p, lead)

    def _awareness(self, p: _Person) -> datetime | None:
        rng = self.rng
        if p.channel == "offline":
            return self._office(p.first_at)
        if p.channel == "referral":
            props = {"kind": "patient", "referrer": p.referrer or ""}
            self._emit("referral", p.first_at, {"phone": p.phone}, "referral", "crm", props)
            return self._days_later(p.first_at, 1, 14)
        self._ad_click(p)
        if rng.random() >= CHANNELS[p.channel].contact:
            return None
        return self._office(p.first_at + timedelta(minutes=rng.randint(1, 600)))

    def _ad_click(self, p: _Person) -> None:
        rng = self.rng
        channel = CHANNELS[p.channel]
        keyword, page = rng.choice(KEYWORDS)
        props: Record = {}
        if p.channel == "search_ads":
            props.update(campaign=channel.campaign, keyword=keyword, utm_term=keyword)
        elif p.channel != "seo":
            group = rng.choice(AD_GROUPS)
            props.update(campaign=channel.campaign, ad_group=group, utm_content=group)
        if channel.utm:
            props.update(utm_source=channel.utm[0], utm_medium=channel.utm[1],
                         utm_campaign=channel.campaign, click_id=f"{rng.getrandbits(56)}")
        props["landing_page"] = SITE + page
        if p.first_at < self.end:
            key = (p.channel, (p.first_at - self.start).days)
            self.clicks[key] = self.clicks.get(key, 0) + 1
        self._emit("ad_click", p.first_at, {"anonymous_id": p.anonymous_id or ""},
                   p.channel, "web_analytics", props)

    def _form(self, p: _Person, t: datetime, book: float) -> _Lead | None:
        rng = self.rng
        online = rng.random() < 0.6
        props: Record = {"form": "online_booking" if online else "callback_request",
                         "page": SITE + rng.choice(KEYWORDS)[1], "branch": p.branch}
        wanted = self._slot(t, 1, 7) if online else None
        if wanted is not None:
            props["requested_at"] = wanted.isoformat()
        customer = {"anonymous_id": p.anonymous_id or "", "phone": p.phone}
        self._emit("form", t, customer, p.channel, "website", props)
        if online:
            booked = rng.random() < book
            return _Lead(t + timedelta(minutes=1), None, "online", wanted) if booked else None
        back = self._office(t + timedelta(minutes=rng.randint(10, 300)))
        admin = rng.choice(_ADMIN_NAMES)
        if rng.random() < 0.8:
            return self._conversation(p, back, "outbound", admin, "phone", book)
        self._call(p, back, "outbound", admin, "phone", answered=False)
        return None

    def _inquiry(self, p: _Person, t: datetime, channel: str, book: float) -> _Lead | None:
        """Inbound calls until one is answered; a missed call may lose the patient."""
        rng = self.rng
        for _ in range(MAX_CALLS):
            admin = rng.choice(_ADMIN_NAMES)
            if rng.random() >= ADMINISTRATORS[admin]:
                return self._conversation(p, t, "inbound", admin, channel, book)
            self._call(p, t, "inbound", admin, channel, answered=False)
            if rng.random() < CALLBACK_RATE:
                back = t + timedelta(minutes=int(5 + 235 * rng.random() ** 3))  # a third within 15 min
                caller = rng.choice(_ADMIN_NAMES)
                if rng.random() < PICKS_UP:
                    return self._conversation(p, back, "outbound", caller, "phone", book * 0.85)
                self._call(p, back, "outbound", caller, "phone", answered=False)
            if rng.random() >= RETRY_RATE:
                return None
            t = self._office(t + timedelta(minutes=rng.randint(20, 2880)))
        return None

    def _conversation(self, p: _Person, t: datetime, direction: str, admin: str,
                      channel: str, book: float) -> _Lead | None:
        rng = self.rng
        booked = rng.random() < book
        outcome = "booked" if booked else rng.choice(("info", "info", "info", "other"))
        seconds = rng.randint(90, 420)
        self._call(p, t, direction, admin, channel, answered=True, seconds=seconds, outcome=outcome)
        return _Lead(t + timedelta(seconds=seconds), admin, "phone") if booked else None

    def _call(self, p: _Person, t: datetime, direction: str, admin: str, channel: str, *,
              answered: bool, seconds: int = 0, outcome: str | None = None) -> None:
        rng = self.rng
        props: Record = {"direction": direction, "answered": answered, "administrator": admin,
                         "duration_seconds": seconds, "branch": p.branch}
        if direction == "inbound":
            tracked = CHANNELS.get(channel)
            props["tracking_number"] = tracked.tracking_number if tracked else MAIN_NUMBER
            props["wait_seconds"] = rng.randint(25, 90) if not answered else rng.randint(2, 30)
        if answered:
            props["outcome"] = outcome
            props["recording_ref"] = f"rec-{self.seed}-{rng.getrandbits(40):010x}"
        new = p.customer_id is None
        props["tags"] = ["missed"] if not answered else ["new_patient"] if new else []
        customer = {"phone": p.phone}
        if direction == "inbound" and channel in CHANNELS and p.anonymous_id:
            # call tracking with number substitution knows which web visitor dialled
            customer["anonymous_id"] = p.anonymous_id
        self._emit("call", t, customer, channel, "telephony", props)

    # -- the patient -------------------------------------------------------------------

    def _patient(self, p: _Person, lead: _Lead) -> None:
        rng = self.rng
        self._register(p, lead.at)
        portrait = PORTRAITS[p.portrait]
        if p.portrait == "child":
            doctor = CHILD_DOCTOR
        else:
            doctor = rng.choices(_ADULT_DOCTORS, cum_weights=_DOCTOR_CUM)[0]
        service = rng.choice(portrait.first_services)
        care = _Care(doctor, (service,), _round100(PRICES[service] * DOCTORS[doctor].price), True)
        visit = self._appointment(p, lead.at, care, lead.via, lead.admin, scheduled=lead.scheduled)
        if visit is not None:
            self._after_first_visit(p, doctor, visit)
        self._marketing(p)
        if visit is not None and p.portrait == "family" and rng.random() < CHILD_RATE:
            self._child(p, visit)

    def _register(self, p: _Person, t: datetime) -> None:
        rng = self.rng
        p.customer_id = self._next("P")
        p.registered_at = t
        if p.portrait != "child":
            p.reminders = rng.random() < REMINDER_CONSENT
            if rng.random() < 0.45:
                local = p.name.lower().replace(" ", ".")
                p.email = f"{local}{p.idx}@{rng.choice(EMAIL_DOMAINS)}"
            sms = rng.random() < MARKETING_SMS
            mail = p.email is not None and rng.random() < MARKETING_EMAIL
            p.marketing = ("sms",) * sms + ("email",) * mail
        self._consents(p, t)
        self._profile(p, t)

    def _consents(self, p: _Person, t: datetime) -> None:
        rng = self.rng
        grants = [("all", "personal_data")]
        grants += [("sms", "reminders")] * p.reminders
        grants += [(medium, "marketing") for medium in p.marketing]
        for channel, purpose in grants:
            customer = p.known() | ({"email": p.email} if channel == "email" and p.email else {})
            props = {"action": "granted", "channel": channel, "purpose": purpose,
                     "document_ref": f"consent-{p.customer_id}-{purpose}"}
            self._emit("consent", t, customer, "clinic", "mis", props)
        if p.marketing and rng.random() < WITHDRAWAL:
            p.withdrawn_at = t + timedelta(days=rng.randint(20, 300), hours=rng.randint(0, 10))
            props = {"action": "withdrawn", "channel": "all", "purpose": "marketing"}
            self._emit("consent", p.withdrawn_at, p.known(), "phone", "mis", props)

    def _profile(self, p: _Person, at: datetime) -> None:
        rng = self.rng
        portrait = PORTRAITS[p.portrait]
        props: Record = {
            "name": p.name,
            "birth_year": self.start.year - rng.randint(*portrait.ages),
            "sex": "female" if p.female else "male",
            "city": "Moscow" if rng.random() < 0.9 else rng.choice(("Khimki", "Krasnogorsk")),
            "district": rng.choice(DISTRICTS),
            "social_status": rng.choice(portrait.social),
            "family": rng.choice(portrait.family),
            "problem": rng.choice(portrait.problems),
            "fears": rng.sample(portrait.fears, rng.randint(1, 2)),
        }
        if portrait.incomes:
            props["income"] = rng.choice(portrait.incomes)
        self._emit("profile", at, p.known(), "clinic", "mis", props)

    def _child(self, parent: _Person, after: datetime) -> None:
        """A parent books a child: another customer_id on the parent's phone."""
        child = self._person("phone", after, None, portrait="child")
        surname = parent.name.split()[-1].removesuffix("a")
        child.phone, child.branch = parent.phone, parent.branch
        child.name = self._name(child.female, surname)
        child.reminders = parent.reminders
        lead = self._inquiry(child, self._days_later(after, 1, 40), "phone", RECALL_BOOK)
        if lead is not None:
            self._patient(child, lead)

    # -- bookings and visits -------------------------------------------------------------

    def _appointment(self, p: _Person, t: datetime, care: _Care, via: str, admin: str | None, *,
                     lead: tuple[int, int] = (1, 7), scheduled: datetime | None = None,
                     replaces: str | None = None) -> datetime | None:
        """Book, remind, then visit, cancel or no-show; the visit time, or None."""
        rng = self.rng
        booking_id = self._next("B")
        when = scheduled or self._slot(t, *lead)
        props: Record = {"booking_id": booking_id, "scheduled_at": when.isoformat(),
                         "service": care.services[0], "doctor": care.doctor, "branch": p.branch,
                         "booked_via": via, "first_visit": care.first}
        if admin:
            props["administrator"] = admin
        if replaces:
            props["rescheduled_from"] = replaces
        source = "booking_widget" if via == "online" else "mis"
        self._emit("booking", t, p.known(), BOOKING_CHANNELS[via], source, props)
        if p.reminders and rng.random() < CONFIRMATION_RATE:
            at = t + timedelta(minutes=rng.randint(1, 5))
            self._message(p, at, "sms", "confirmation", "booking_confirmation", booking_id)
        reminded = self._remind(p, t, when, booking_id)
        roll = rng.random()
        if roll < CANCEL_RATE:
            return self._cancel(p, t, when, care, booking_id, admin, retry=replaces is None)
        if roll < CANCEL_RATE + (NO_SHOW_REMINDED if reminded else NO_SHOW_UNREMINDED):
            return self._no_show(p, when, care, booking_id, retry=replaces is None)
        return self._visit(p, when, care, booking_id)

    def _remind(self, p: _Person, t: datetime, when: datetime, booking_id: str) -> bool:
        rng = self.rng
        if not p.reminders or rng.random() >= REMINDER_COVERAGE:
            return False
        at = (when - timedelta(days=1)).replace(hour=rng.randint(10, 18), minute=rng.randrange(60))
        if at <= t:
            return False
        self._message(p, at, "sms", "reminder", "visit_reminder", booking_id)
        return True

    def _cancel(self, p: _Person, t: datetime, when: datetime, care: _Care, booking_id: str,
                admin: str | None, *, retry: bool) -> datetime | None:
        rng = self.rng
        by_patient = rng.random() < 0.8
        at = (t + (when - t) * rng.random()).replace(microsecond=0)
        rescheduled = retry and rng.random() < (0.45 if by_patient else 0.85)
        props: Record = {
            "booking_id": booking_id,
            "cancelled_by": "patient" if by_patient else "clinic",
            "reason": rng.choice(PATIENT_CANCEL if by_patient else CLINIC_CANCEL),
            "notice_hours": round((when - at).total_seconds() / 3600, 1),
            "rescheduled": rescheduled,
            "administrator": admin or rng.choice(_ADMIN_NAMES),
        }
        self._emit("booking_cancelled", at, p.known(), "phone", "mis", props)
        if not rescheduled:
            return None
        return self._appointment(p, at, care, "phone", props["administrator"], lead=(1, 10),
                                 replaces=booking_id)

    def _no_show(self, p: _Person, when: datetime, care: _Care, booking_id: str, *,
                 retry: bool) -> datetime | None:
        rng = self.rng
        props = {"booking_id": booking_id, "scheduled_at": when.isoformat(),
                 "doctor": care.doctor, "branch": p.branch}
        self._emit("no_show", when + timedelta(minutes=20), p.patient(), "clinic", "mis", props)
        if not retry or rng.random() >= REBOOK_RATE:
            return None
        admin = rng.choice(_ADMIN_NAMES)
        back = self._office(when + timedelta(days=1, minutes=rng.randint(0, 180)))
        self._call(p, back, "outbound", admin, "phone", answered=True,
                   seconds=rng.randint(60, 240), outcome="booked")
        return self._appointment(p, back, care, "phone", admin, replaces=booking_id)

    def _visit(self, p: _Person, when: datetime, care: _Care, booking_id: str) -> datetime:
        rng = self.rng
        at = when + timedelta(minutes=rng.randint(0, 10))
        visit_id = self._next("V")
        method = self._payment_method(care.amount)
        props: Record = {"visit_id": visit_id, "booking_id": booking_id, "doctor": care.doctor,
                         "branch": p.branch, "services": list(care.services),
                         "amount": _money(care.amount), "payment_method": method,
                         "first_visit": care.first}
        self._emit("visit", at, p.patient(), "clinic", "mis", props)
        paid: Record = {"payment_id": self._next("PAY"), "amount": _money(care.amount),
                        "method": method, "visit_id": visit_id}
        if care.plan_id:
            paid["plan_id"] = care.plan_id
        self._emit("payment", at + timedelta(minutes=rng.randint(30, 90)), p.patient(),
                   "clinic", "cashdesk", paid)
        return at

    def _payment_method(self, amount: int) -> str:
        roll = self.rng.random()
        if amount >= 40000 and roll < 0.3:
            return "credit"
        if roll < 0.10:
            return "insurance"
        if roll < 0.25:
            return "cash"
        return "transfer" if roll < 0.32 else "card"

    # -- treatment, feedback, retention ----------------------------------------------------

    def _after_first_visit(self, p: _Person, doctor: str, visit: datetime) -> None:
        rng = self.rng
        doc = DOCTORS[doctor]
        thanked = rng.random() < THANK_YOU_RATE
        if thanked:
            medium = "messenger" if rng.random() < 0.3 else "sms"
            at = self._office(visit + timedelta(hours=rng.randint(2, 60)))
            self._message(p, at, medium, "thank_you", "thank_you_first_visit")
        p.satisfied = rng.random() < min(0.98, doc.satisfied + (0.06 if thanked else 0.0))
        last = self._plan(p, doctor, visit) if rng.random() < doc.plan else visit
        self._feedback(p, doctor, last)
        if p.satisfied and p.portrait != "child" and rng.random() < REFER_RATE:
            self._refer_friend(p, last)
        self._retention(p, doctor, last)

    def _plan(self, p: _Person, doctor: str, visit: datetime) -> datetime:
        rng = self.rng
        services, stages = rng.choice(PORTRAITS[p.portrait].plans)
        total = _round100(sum(PRICES[s] for s in services) * stages / len(services)
                          * DOCTORS[doctor].price)
        plan_id = self._next("TP")
        base: Record = {"plan_id": plan_id, "doctor": doctor, "services": list(services),
                        "total": _money(total), "stages": stages}
        self._emit("treatment_plan", visit + timedelta(minutes=25), p.patient(), "clinic", "mis",
                   base | {"status": "proposed"})
        decided = visit + timedelta(minutes=35)
        if rng.random() < 0.5:
            decided = self._days_later(visit, 1, 10)
        accept = DOCTORS[doctor].accept * (1.0 if p.satisfied else 0.45)
        if rng.random() >= accept:
            declined = base | {"status": "declined", "decline_reason": rng.choice(DECLINE_REASONS)}
            self._emit("treatment_plan", decided, p.patient(), "clinic", "mis", declined)
            return visit
        self._emit("treatment_plan", decided, p.patient(), "clinic", "mis",
                   base | {"status": "accepted"})
        return self._course(p, doctor, plan_id, services, stages, total, decided)

    def _course(self, p: _Person, doctor: str, plan_id: str, services: tuple[str, ...],
                stages: int, total: int, last: datetime) -> datetime:
        rng = self.rng
        share = total // stages
        for stage in range(stages):
            if stage and rng.random() < DROP_OUT:
                break
            amount = share + (total - share * stages if stage == stages - 1 else 0)
            care = _Care(doctor, (services[stage % len(services)],), amount, False, plan_id)
            visit = self._appointment(p, last + timedelta(minutes=40), care, "walk_in",
                                      rng.choice(_ADMIN_NAMES), lead=(5, 21))
            if visit is None:
                break
            if care.services[0] in SURGERY and rng.random() < CARE_RATE:
                at = self._office(visit + timedelta(hours=rng.randint(18, 30)))
                self._message(p, at, "messenger", "care", "after_surgery_care")
            last = visit
        return last

    def _feedback(self, p: _Person, doctor: str, at: datetime) -> None:
        rng = self.rng
        explains = DOCTORS[doctor].explains
        if rng.random() < SURVEY_RATE:
            survey: Record = {
                "platform": "survey", "doctor": doctor,
                "nps": rng.randint(9, 10) if p.satisfied else rng.randint(0, 7),
                "explained_problem": rng.random() < explains,
                "explained_complications": rng.random() < explains - 0.1,
                "explained_guarantees": rng.random() < explains - 0.15,
                "price_justified": p.satisfied and rng.random() < 0.85,
            }
            self._emit("review", at + timedelta(days=1, hours=rng.randint(0, 12)), p.patient(),
                       "sms", "survey", survey)
        if rng.random() < (0.18 if p.satisfied else 0.35):
            self._public_review(p, doctor, self._days_later(at, 1, 20))

    def _public_review(self, p: _Person, doctor: str, at: datetime) -> None:
        rng = self.rng
        platform = rng.choices(("maps", "portal", "site"), cum_weights=(0.45, 0.75, 1.0))[0]
        rating = rng.choice((4, 5, 5, 5)) if p.satisfied else rng.choice((1, 1, 2, 2, 3))
        props: Record = {"platform": platform, "rating": rating, "doctor": doctor,
                         "answered": rng.random() < (0.55 if rating >= 4 else 0.3)}
        if rating <= 2 or rng.random() < 0.4:
            props["text"] = rng.choice(GOOD_REVIEWS if rating >= 4 else BAD_REVIEWS)
        self._emit("review", at, p.patient(), platform, "reviews", props)

    def _refer_friend(self, p: _Person, after: datetime) -> None:
        rng = self.rng
        at = after + timedelta(days=rng.randint(3, 60), hours=rng.randint(0, 10))
        if at < self.end:
            self.friends.append(self._person("referral", at, None, referrer=p.customer_id))

    def _retention(self, p: _Person, doctor: str, last: datetime) -> None:
        """Recall visits months later: the first-visit doctor decides who comes back."""
        rng = self.rng
        doc = DOCTORS[doctor]
        for _ in range(3):
            due = last + timedelta(days=rng.randint(150, 210))
            if due >= self.end:
                return
            held_out = self.recall_held_out is not None and self.recall_held_out(p.customer_id or "")
            invited = not held_out and self._marketing_message(p, due - timedelta(days=rng.randint(3, 14)),
                                                               "recall", "checkup_recall")
            chance = doc.recall * (1.0 if p.satisfied else 0.35) * (1.25 if invited else 0.75)
            if rng.random() >= chance:
                return
            lead = self._inquiry(p, self._days_later(due, 0, 25), "phone", RECALL_BOOK)
            if lead is None:
                return
            services = ("check-up", "professional hygiene")
            amount = _round100(sum(PRICES[s] for s in services) * doc.price)
            care = _Care(doctor, services, amount, False)
            visit = self._appointment(p, lead.at, care, "phone", lead.admin)
            if visit is None:
                return
            last = visit

    # -- messages ------------------------------------------------------------------------

    def _marketing(self, p: _Person) -> None:
        """Promotions and birthday greetings after registration (children get none)."""
        rng = self.rng
        if p.portrait == "child" or p.registered_at is None:
            return
        for day, template in PROMOTIONS:
            if day < self.days and rng.random() < PROMO_REACH:
                at = self.start + timedelta(days=day, hours=11, minutes=rng.randrange(120))
                self._marketing_message(p, at, "promotion", template)
        for year in (self.start.year, self.start.year + 1):
            month, day = p.birthday
            at = datetime(year, month, day, 10, rng.randrange(60), tzinfo=MSK)
            self._marketing_message(p, at, "birthday", "birthday_greeting")

    def _marketing_message(self, p: _Person, at: datetime, purpose: str, template: str) -> bool:
        if p.registered_at is None or p.portrait == "child" or not p.registered_at < at < self.end:
            return False
        allowed = () if p.withdrawn_at and at >= p.withdrawn_at else p.marketing
        if allowed:
            medium = allowed[0] if len(allowed) == 1 or self.rng.random() < 0.7 else allowed[1]
        elif self.rng.random() < STRAY_MARKETING:
            medium = "sms"  # sent without consent: what a compliance check must catch
        else:
            return False
        self._message(p, at, medium, purpose, template)
        return True

    def _message(self, p: _Person, at: datetime, medium: str, purpose: str, template: str,
                 booking_id: str | None = None) -> None:
        customer = p.patient()
        if medium == "email" and p.email:
            customer["email"] = p.email
        else:
            customer["phone"] = p.phone
        props: Record = {"medium": medium, "purpose": purpose, "template": template,
                         "delivered": self.rng.random() < 0.97}
        if booking_id:
            props["booking_id"] = booking_id
        self._emit("message", at, customer, medium, MESSAGE_SOURCES[medium], props)

    # -- ad spend -------------------------------------------------------------------------

    def _ad_spend(self) -> Iterator[Record]:
        """One ad_spend per paid channel per day; clicks are that day's ad_click touches."""
        rng = self.rng
        scale = self.patients / 3000 * 365 / self.days
        for day in range(self.days):
            at = self.start + timedelta(days=day)
            for name, channel in CHANNELS.items():
                clicks = self.clicks.get((name, day), 0)
                cost = clicks * channel.cpc * rng.uniform(0.85, 1.15)
                cost += channel.daily * scale * rng.uniform(0.9, 1.1)
                props: Record = {"day": at.date().isoformat(), "cost": _money(round(cost)),
                                 "campaign": channel.campaign}
                if name != "offline":
                    props["clicks"] = clicks
                    props["impressions"] = round(clicks / channel.ctr * rng.uniform(0.8, 1.2))
                self.seq += 1
                yield {"event_id": f"demo-{self.seed}-{self.seq}", "type": "ad_spend",
                       "occurred_at": at.isoformat(), "channel": name,
                       "source": channel.spend_source, "properties": props}
