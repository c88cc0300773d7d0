"""Browser tests: real pages in Debian's Chromium through Playwright (see tests/conftest.py)."""
