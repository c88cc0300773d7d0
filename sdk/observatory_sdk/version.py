"""The SDK version, in one place for the package metadata check and the User-Agent header."""

from __future__ import annotations

VERSION = "0.1.0"
