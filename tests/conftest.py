import os

import pytest

from book_support import HTML, ROOT, book_is_stale, build_book


@pytest.fixture(scope="session")
def book_html():
    """`_build/html`, built with the strict command first if it is missing or out of date.

    `make test` builds the book just before pytest, so this normally reuses that build.
    Set BOOK_REBUILD=1 to force a fresh build.
    """
    if os.environ.get("BOOK_REBUILD") == "1" or book_is_stale():
        result = build_book()
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            pytest.fail(f"the strict book build failed (cd {ROOT} && make book-strict):\n{tail}",
                        pytrace=False)
    return HTML
