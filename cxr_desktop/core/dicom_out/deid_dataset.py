"""De-identify one dataset in place, by the Basic Profile table, with the state of a run.

One :class:`Pseudonymizer` serves a whole run so that what belongs together stays together:
the same original UID gets the same new UID in every file (``generate_uid`` over a random
secret of the run and the old UID: nothing outside the run can link them back, and the
secret is never stored), the same patient the same pseudonym (``ANON-0001``, numbered in the
order met, never derived from the original) and the same random date shift.

Where Table E.1-1 lets the de-identifier choose, a zero-length value is preferred (``X/Z``,
``Z/D``, ``X/Z/D``), else a dummy (``X/D``); ``X/Z/U*`` keeps the sequence with its UIDs
replaced. A sequence that must be dummied (``D``: the content of an SR, graphic
annotations) is emptied, since its items could hold anything. Beyond the profile, for safety:
person names the table does not list are emptied, and a date the table does not list (a
calibration date, say) is shifted, or emptied when dates are removed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from cxr_desktop.core.dicom_out.deid_profile import (
    CLEAN_DESCRIPTORS,
    METHOD_CODES,
    profile_action,
)

DATE_CHOICES = ("shift", "remove", "keep")
#: What tells patients apart, in order: an instance without any is a patient of its own.
_PATIENT_KEYS = ("PatientID", "PatientName", "StudyInstanceUID", "SOPInstanceUID")
_BIRTH = frozenset({0x00100030, 0x00100032})  # never shifted nor kept: the profile's Z / X
_DUMMIES = {"PN": "ANONYMOUS", "DA": "19000101", "DT": "19000101000000", "TM": "000000",
            "AS": "000Y", "IS": "0", "DS": "0"}
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "UR"})
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})
_SCRUBBED_VRS = _TEXT_VRS | {"PN", "DA", "DT", "UI"}
_SHORTEST_SCRUBBED = 3  # shorter values ("M", "CR") would blank ordinary words
_SHIFT_DAYS = (365, 3652)  # each patient's dates move back by 1 to 10 years


@dataclass(frozen=True)
class DeidOptions:
    """``dates``: ``shift`` (one random offset per patient, intervals kept), ``remove``
    (the Basic Profile) or ``keep``; ``keep_descriptions``: the Clean Descriptors Option
    (descriptions and comments kept, the instance's own identifiers cut out of them);
    ``keep_folders``: the copy keeps the source's folders (class folders) instead of a
    patient / study / series tree."""

    dates: str = "shift"
    keep_descriptions: bool = False
    keep_folders: bool = False

    def __post_init__(self) -> None:
        if self.dates not in DATE_CHOICES:
            raise ValueError(f"dates must be one of {', '.join(DATE_CHOICES)}")

    def method_codes(self) -> list[str]:
        """The CID 7050 codes of what this run does."""
        codes = ["113100"]
        if self.keep_descriptions:
            codes.append("113105")
        codes += {"shift": ["113107"], "keep": ["113106"], "remove": []}[self.dates]
        return codes


def _resolve(code: str) -> str:
    """One action of a compound code: zero length where allowed, else a dummy."""
    if code == "X/Z/U*":
        return "U*"
    parts = code.split("/")
    return next((choice for choice in ("Z", "D") if choice in parts), parts[0])


def shift_date(value: str, vr: str, days: int) -> str:
    """A DA or DT value moved by ``days``; '' for a partial or malformed one (removed,
    never guessed). The time of a DT is kept: whole days keep every interval."""
    text = value.strip()
    head = text[:8]
    if len(head) != 8 or not head.isdigit():
        return ""
    try:
        moved = date(int(head[:4]), int(head[4:6]), int(head[6:])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}" + (text[8:] if vr == "DT" else "")


def _strings(value: object) -> list[str]:
    items = value if isinstance(value, (list, MultiValue)) else [value]
    return [str(item) for item in items if item is not None and str(item).strip()]


class Pseudonymizer:
    """The state of one de-identification run; :meth:`deidentify` changes a dataset."""

    def __init__(self, options: DeidOptions) -> None:
        self.options = options
        self._secret = secrets.token_hex(32)
        self.uids: dict[str, tuple[str, str]] = {}  # old UID -> (new UID, keyword first seen)
        self.patients: dict[tuple[str, str], str] = {}  # (keyword, original) -> pseudonym
        self.shifts: dict[str, int] = {}  # pseudonym -> days

    def new_uid(self, old: str, keyword: str = "") -> str:
        old = old.strip().rstrip("\0")
        if old not in self.uids:
            self.uids[old] = (generate_uid(prefix=None, entropy_srcs=[self._secret, old]),
                              keyword)
        return self.uids[old][0]

    def pseudonym(self, ds: Dataset) -> str:
        """The patient's pseudonym, by Patient ID, else name, else (nothing to go by) study."""
        key = next(((keyword, str(ds.get(keyword))) for keyword in _PATIENT_KEYS
                    if str(ds.get(keyword) or "").strip()), ("", ""))
        if key not in self.patients:
            name = f"ANON-{len(self.patients) + 1:04d}"
            self.patients[key] = name
            self.shifts[name] = -(_SHIFT_DAYS[0] + secrets.randbelow(_SHIFT_DAYS[1]
                                                                     - _SHIFT_DAYS[0] + 1))
        return self.patients[key]

    def deidentify(self, ds: Dataset) -> str:
        """De-identify ``ds`` (header and file meta; pixel data untouched) and return the
        patient's pseudonym."""
        pseudonym = self.pseudonym(ds)
        scrub = self._identifiers(ds) if self.options.keep_descriptions else None
        ds.remove_private_tags()
        self._clean(ds, self.shifts[pseudonym], scrub)
        ds.PatientName = ds.PatientID = pseudonym
        ds.PatientIdentityRemoved = "YES"
        codes = self.options.method_codes()
        ds.DeidentificationMethod = [METHOD_CODES[code] for code in codes]
        ds.DeidentificationMethodCodeSequence = [self._code(code) for code in codes]
        ds.LongitudinalTemporalInformationModified = {
            "shift": "MODIFIED", "remove": "REMOVED", "keep": "UNMODIFIED"}[self.options.dates]
        self._file_meta(ds)
        return pseudonym

    # The table, element by element ---------------------------------------------------------
    def _action(self, elem: DataElement) -> str:
        tag, vr = int(elem.tag), elem.VR
        code = profile_action(tag)
        if code is not None and self.options.keep_descriptions and tag in CLEAN_DESCRIPTORS:
            return "C"
        if vr in ("DA", "DT", "TM") and tag not in _BIRTH:
            if self.options.dates == "keep" or (self.options.dates == "shift" and vr == "TM"):
                return "K"
            if self.options.dates == "shift":
                return "S"
            if code is None:
                return "K" if vr == "TM" else "Z"
        if code is None:
            return "Z" if vr == "PN" else "K"
        return _resolve(code)

    def _clean(self, ds: Dataset, days: int, scrub: re.Pattern[str] | None) -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            if elem.tag.element == 0:  # group lengths go stale once values change
                del ds[tag]
                continue
            action = self._action(elem)
            if action == "X":
                del ds[tag]
            elif elem.VR == "SQ":
                if action in ("Z", "D"):
                    elem.value = []
                else:
                    for item in elem.value:
                        self._clean(item, days, scrub)
            elif action == "Z":
                elem.value = empty_value_for_VR(elem.VR)
            elif action == "D":
                elem.value = self._dummy(elem)
            elif action in ("U", "U*"):
                elem.value = self._uids(elem) if elem.VR == "UI" else empty_value_for_VR(elem.VR)
            elif action == "S":
                elem.value = [shift_date(v, elem.VR, days) for v in _strings(elem.value)] or ""
            elif action == "C" and scrub is not None and elem.VR in _TEXT_VRS:
                elem.value = [scrub.sub("***", v) for v in _strings(elem.value)] or ""

    def _uids(self, elem: DataElement) -> list[str]:
        return [self.new_uid(v, elem.keyword) for v in _strings(elem.value)]

    def _dummy(self, elem: DataElement) -> object:
        vr = elem.VR
        if vr == "UI":
            return self._uids(elem)
        if vr in _DUMMIES:
            return _DUMMIES[vr]
        if vr in _TEXT_VRS:
            return "ANONYMIZED"
        return 0 if vr in _NUMBER_VRS else empty_value_for_VR(vr)

    def _identifiers(self, ds: Dataset) -> re.Pattern[str] | None:
        """A pattern of the values the profile takes out of ``ds`` (names and their parts,
        IDs, dates, UIDs...), to cut out of the descriptions it keeps."""
        found: set[str] = set()

        def collect(dataset: Dataset) -> None:
            for elem in dataset:
                if elem.VR == "SQ":
                    for item in elem.value:
                        collect(item)
                elif elem.VR in _SCRUBBED_VRS and self._action(elem) not in ("K", "C"):
                    for value in _strings(elem.value):
                        found.update(re.split(r"[\^=]", value) + [value])

        collect(ds)
        words = sorted((w.strip() for w in found if len(w.strip()) >= _SHORTEST_SCRUBBED),
                       key=len, reverse=True)
        return re.compile("|".join(map(re.escape, words)), re.IGNORECASE) if words else None

    @staticmethod
    def _code(value: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator = value, "DCM"
        item.CodeMeaning = METHOD_CODES[value]
        return item

    def _file_meta(self, ds: Dataset) -> None:
        """A new file meta: class, new instance UID and the same transfer syntax (the pixel
        data stays as encoded); no AE titles or private information of the sender."""
        old = getattr(ds, "file_meta", None)
        syntax = old.get("TransferSyntaxUID") if old is not None else None
        if syntax is None:
            syntax = ImplicitVRLittleEndian if ds.original_encoding[0] else ExplicitVRLittleEndian
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = syntax
        ds.file_meta = meta
        ds.preamble = b"\0" * 128
