"""JSON documents as text for people and files: stable keys, Unicode kept, no raw controls."""

from __future__ import annotations

import json
import re
from typing import Any

# json.dumps(ensure_ascii=False) leaves DEL, C1 controls and the Unicode line separators raw;
# inside JSON text they can only sit in strings, where \uXXXX keeps the document valid JSON.
_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def json_text(doc: Any, *, sort_keys: bool = True) -> str:
    """``doc`` indented by two, with every control character escaped."""
    text = json.dumps(doc, indent=2, sort_keys=sort_keys, ensure_ascii=False)
    return _RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
