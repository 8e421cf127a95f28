"""The HTML report: one self-contained file. The page's data is embedded as JSON beside its script and
style (report.html, the template); its content security policy forbids every request, so the page reads
offline and cannot reach out."""
import json
from importlib import resources

from ..files import write_text

PLACEHOLDER = "{/*PAGE*/}"


def write(path, page):
    template = resources.files(__package__).joinpath("report.html").read_text(encoding="utf-8")
    payload = json.dumps(page, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # in a <script> element, "</script>" or "<!--" in the text would end or derail it: escape every "<"
    write_text(path, template.replace(PLACEHOLDER, payload.replace("<", "\\u003c")))
