"""Page furniture and Vietnamese formatting shared by the rendered documents (see ``handlers.documents``).

Everything here is deterministic: no clock, no randomness, fonts read from the repository
(``workflows/fonts``, DejaVu Serif, regular and bold), so the same input always gives the same bytes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from engine.errors import ValidationError

FONT_DIR = Path(__file__).resolve().parent.parent / "workflows" / "fonts"
FAMILY = "DejaVuSerif"
VN_TZ = timezone(timedelta(hours=7), "ICT")
DOTS = "…………………"
BODY_SIZE = 11
LINE = 6.0


def nfc(value: Any) -> str:
    """Return ``value`` as NFC-normalised text (``None`` gives the empty string)."""
    return "" if value is None else unicodedata.normalize("NFC", str(value))


def nfc_deep(value: Any) -> Any:
    """Return a copy of ``value`` with every string inside (keys too) NFC-normalised."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, Mapping):
        return {nfc_deep(key): nfc_deep(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [nfc_deep(item) for item in value]
    return value


def fail(field: str, problem: str) -> ValidationError:
    """Build the ValidationError for one bad ``field``."""
    return ValidationError(f"'{field}' {problem}", errors={field: [problem]})


def to_moment(value: Any, field: str) -> datetime:
    """Return ``value`` (datetime, date or ISO text) as a datetime in Viet Nam time (UTC+7).

    A naive datetime is taken as Viet Nam local time; an aware one is converted.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise fail(field, "is not an ISO date/time") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=VN_TZ) if value.tzinfo is None else value.astimezone(VN_TZ)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=VN_TZ)
    raise fail(field, "must be a date/time")


def vn_date(moment: datetime) -> str:
    """Format a date Vietnamese style: ``ngày 30 tháng 11 năm 2026``, ``ngày 05 tháng 3 năm 2027``.

    As administrative documents write it (Decree 30/2020/ND-CP): a zero before days below 10 and before
    months 1 and 2, none before the other months.
    """
    month = f"{moment.month:02d}" if moment.month < 3 else str(moment.month)
    return f"ngày {moment.day:02d} tháng {month} năm {moment.year}"


def vn_time(moment: datetime) -> str:
    """Format a time of day Vietnamese style: ``10 giờ 05``."""
    return f"{moment.hour:02d} giờ {moment.minute:02d}"


def vn_datetime(moment: datetime) -> str:
    """Format a moment: ``10 giờ 05 phút, ngày 30 tháng 11 năm 2026``."""
    return f"{vn_time(moment)} phút, {vn_date(moment)}"


def vn_short(moment: datetime) -> str:
    """Format a moment compactly for table cells: ``10 giờ 05, 30/11/2026``."""
    return f"{vn_time(moment)}, {moment.day:02d}/{moment.month:02d}/{moment.year}"


def to_amount(value: Any, field: str) -> Decimal:
    """Return ``value`` (Decimal, int, numeric text) as a Decimal amount of VND."""
    if isinstance(value, bool):
        raise fail(field, "must be an amount of VND")
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) else value
    except InvalidOperation:
        amount = None
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise fail(field, "must be an amount of VND")
    return amount


def vn_money(amount: Decimal) -> str:
    """Format VND Vietnamese style: ``200.000 đồng`` (dot groups thousands, comma marks decimals)."""
    sign = "-" if amount < 0 else ""
    whole = int(abs(amount))
    text = f"{whole:,}".replace(",", ".")
    fraction = abs(amount) - whole
    if fraction:
        text += "," + format(fraction.normalize(), "f").split(".")[1]
    return f"{sign}{text} đồng"


class View:
    """Read access to an input mapping by dotted path; errors name the full path (``prefix`` + path)."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def get(self, path: str) -> Any:
        """Return the value at ``path`` (e.g. ``procedure.agency.name``), ``None`` when missing or empty."""
        value: Any = self.data
        for part in path.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return None if value is None or value in ("", [], {}) else value

    def need(self, path: str) -> Any:
        """Return the value at ``path``; raise ValidationError naming it when it is missing."""
        value = self.get(path)
        if value is None:
            raise fail(self.prefix + path, "is required")
        return value

    def text(self, path: str, default: str = DOTS) -> str:
        """Return the value at ``path`` as text, or ``default`` (dots to fill in) when missing."""
        value = self.get(path)
        return default if value is None else nfc(value)

    def moment(self, path: str) -> datetime | None:
        """Return the date/time at ``path`` in Viet Nam time, ``None`` when missing."""
        value = self.get(path)
        return None if value is None else to_moment(value, self.prefix + path)

    def needed_moment(self, path: str) -> datetime:
        """Return the required date/time at ``path`` in Viet Nam time."""
        return to_moment(self.need(path), self.prefix + path)

    def records(self, path: str) -> list[View]:
        """Return the list of mappings at ``path`` (empty when missing), each as a View."""
        items = self.get(path) or []
        if not isinstance(items, list | tuple):
            raise fail(self.prefix + path, "must be a list")
        views = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise fail(f"{self.prefix}{path}[{index}]", "must be a mapping")
            views.append(View(item, f"{self.prefix}{path}[{index}]."))
        return views


class DocumentPdf(FPDF):
    """An A4 page set up for official documents: embedded DejaVu Serif, fixed metadata, page numbers."""

    def __init__(self, *, created: datetime, title: str, landscape: bool = False, footer: str = "") -> None:
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.add_font(FAMILY, "", str(FONT_DIR / "DejaVuSerif.ttf"))
        self.add_font(FAMILY, "B", str(FONT_DIR / "DejaVuSerif-Bold.ttf"))
        self.set_margins(20, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.set_creation_date(created)
        self.set_title(nfc(title))
        self.set_creator("motcua")
        self.set_producer("motcua")
        self.set_lang("vi")
        self.footer_text = nfc(footer)
        self.set_font(FAMILY, size=BODY_SIZE)
        self.add_page()

    def footer(self) -> None:
        """Print the footer note and ``Trang n/N`` at the bottom of every page."""
        self.set_y(-13)
        self.set_font(FAMILY, size=8)
        self.cell(0, 5, f"{self.footer_text}    Trang {self.page_no()}/{{nb}}".strip(), align="R")
        self.set_font(FAMILY, size=BODY_SIZE)

    def column(self, x: float, width: float, lines: Sequence[tuple[str, bool]], size: float) -> float:
        """Print centred ``(text, bold)`` lines in a column starting at ``x``; return the y reached."""
        for text, bold in lines:
            self.set_font(FAMILY, "B" if bold else "", size)
            self.set_x(x)
            self.multi_cell(width, 5.5, nfc(text), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
        return self.get_y()

    def rule_under(self, x: float, width: float, text: str) -> None:
        """Draw the short line centred under the ``text`` just printed in a column of ``width``."""
        length = min(self.get_string_width(nfc(text)), width)
        y = self.get_y() + 0.6
        self.line(x + (width - length) / 2, y, x + (width + length) / 2, y)

    def national_header(self, agency: Sequence[str], number: str, place_date: str) -> None:
        """Print the two-column header: issuing agency left, national motto and date right."""
        top, left = self.get_y(), self.l_margin
        left_w = self.epw * 0.48
        right_x, right_w = left + left_w, self.epw - left_w
        lines = [(line.upper(), i == len(agency) - 1) for i, line in enumerate(agency) if line]
        bottom_left = self.column(left, left_w, lines, 10)
        if lines:
            self.rule_under(left, left_w, lines[-1][0])
        self.set_y(bottom_left + 1.5)
        bottom_left = self.column(left, left_w, [(number, False)], 10)
        self.set_y(top)
        self.column(right_x, right_w, [("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", True)], 10)
        motto = "Độc lập - Tự do - Hạnh phúc"
        self.column(right_x, right_w, [(motto, True)], 11)
        self.set_font(FAMILY, "B", 11)
        self.rule_under(right_x, right_w, motto)
        self.set_y(self.get_y() + 1.5)
        bottom_right = self.column(right_x, right_w, [(place_date, False)], 10)
        self.set_xy(self.l_margin, max(bottom_left, bottom_right) + 6)
        self.set_font(FAMILY, size=BODY_SIZE)

    def motto(self) -> None:
        """Print the national motto centred across the page, as citizens' declaration forms have it."""
        self.column(self.l_margin, self.epw, [("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", True)], BODY_SIZE)
        motto = "Độc lập - Tự do - Hạnh phúc"
        self.column(self.l_margin, self.epw, [(motto, True)], BODY_SIZE + 1)
        self.set_font(FAMILY, "B", BODY_SIZE + 1)
        self.rule_under(self.l_margin, self.epw, motto)
        self.set_xy(self.l_margin, self.get_y() + 8)
        self.set_font(FAMILY, size=BODY_SIZE)

    def title_block(self, title: str, subtitle: str = "") -> None:
        """Print the document title in bold capitals, centred, with an optional subtitle."""
        self.set_font(FAMILY, "B", 13)
        self.multi_cell(0, 7, nfc(title), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if subtitle:
            self.set_font(FAMILY, "", BODY_SIZE)
            self.multi_cell(0, LINE, nfc(subtitle), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(4)
        self.set_font(FAMILY, size=BODY_SIZE)

    def para(self, text: str, *, bold: bool = False, indent: float = 0, align: str = "L") -> None:
        """Print a left-aligned paragraph that wraps at word boundaries."""
        self.set_font(FAMILY, "B" if bold else "", BODY_SIZE)
        self.set_x(self.l_margin + indent)
        self.multi_cell(0, LINE, nfc(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FAMILY, size=BODY_SIZE)

    def dotted(self, label: str, *, indent: float = 0) -> None:
        """Print ``label`` followed by dots up to the right margin: a blank to fill in by hand."""
        text = nfc(label)
        self.set_x(self.l_margin + indent)
        room = self.epw - indent - self.get_string_width(text + " ") - 2 * self.c_margin - 1
        count = max(int(room / self.get_string_width(".")), 3)
        line = f"{text} {'.' * count}".lstrip()
        self.multi_cell(0, LINE + 1, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        size: float = BODY_SIZE - 1.5,
    ) -> None:
        """Print a bordered table (relative column ``widths``) whose heading row repeats on every page."""
        self.set_font(FAMILY, size=size)
        style = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
        with self.table(
            col_widths=tuple(widths),
            text_align="LEFT",
            line_height=5,
            headings_style=style,
            padding=1,
            v_align="TOP",
            align="LEFT",
        ) as table:
            for row in [headings, *rows]:
                cells = table.row()
                for text in row:
                    cells.cell(nfc(text))
        self.ln(3)
        self.set_font(FAMILY, size=BODY_SIZE)

    def signatures(self, blocks: Sequence[tuple[str, str]]) -> None:
        """Print side-by-side signature blocks ``(ROLE, name)``, each with the signing hint and room."""
        self.ln(4)
        if self.will_page_break(40):
            self.add_page()
        top, width = self.get_y(), self.epw / max(len(blocks), 1)
        for index, (role, name) in enumerate(blocks):
            if not role:
                continue
            x = self.l_margin + index * width
            self.set_y(top)
            self.column(x, width, [(role, True)], BODY_SIZE)
            self.column(x, width, [("(Ký và ghi rõ họ tên)", False)], 9)
            self.set_y(self.get_y() + 20)
            self.column(x, width, [(name, True)], BODY_SIZE)
        self.set_font(FAMILY, size=BODY_SIZE)

    def render(self) -> bytes:
        """Return the finished PDF."""
        return bytes(self.output())


def blank_field(pdf: DocumentPdf, label: str, prop: Mapping[str, Any], indent: float) -> None:
    """Print a form field to fill in by hand: boxes for booleans and enums, dots for the rest."""
    if prop.get("type") == "boolean":
        pdf.para(f"{label}:   □ Có      □ Không", indent=indent)
    elif isinstance(prop.get("enum"), list):
        pdf.para(f"{label}:   " + "      ".join(f"□ {nfc(option)}" for option in prop["enum"]), indent=indent)
    elif prop.get("format") in ("date", "date-time"):
        pdf.para(f"{label}: ngày …… tháng …… năm ……", indent=indent)
    else:
        pdf.dotted(f"{label}:", indent=indent)
        if prop.get("type") == "array" or (prop.get("maxLength") or 0) > 200:
            pdf.dotted("", indent=indent)


def value_text(prop: Mapping[str, Any], value: Any, field: str) -> str:
    """Return a declared form value as printed text (Vietnamese dates, "Có"/"Không", lists joined)."""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if prop.get("format") == "date":
        return vn_date(to_moment(value, field))
    if prop.get("format") == "date-time":
        return vn_datetime(to_moment(value, field))
    if isinstance(value, list | tuple):
        return "; ".join(nfc(item) for item in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{nfc(k)}: {nfc(v)}" for k, v in value.items())
    return nfc(value)
