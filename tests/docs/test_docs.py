"""The documentation's rules that need no optimisation: every code block is marked as tested or
not (and why), the Markdown doctests pass, the changelog's newest entry is the package's version,
the docs extra matches the test requirements, and the bundled samples are found."""

import doctest
import re

import pytest

import diffmorph
from conftest import IMAGES, REPO, one_line
from diffmorph.errors import InputError
from diffmorph.io import samples
from docs_blocks import DOC_FILES, code_blocks


def test_the_pages_and_the_readme_are_there():
    names = {str(path.relative_to(REPO)) for path in DOC_FILES}
    for page in ("README.md", "docs/index.md", "docs/getting-started.md", "docs/api.md", "docs/changelog.md"):
        assert page in names, page
    assert len(DOC_FILES) >= 15, names


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shell_and_python_block_says_whether_it_is_tested(path):
    """A bash or python block without a mark would silently go untested: each is preceded by
    ``<!-- test -->``, ``<!-- test: tiny -->`` or ``<!-- not tested: WHY -->``."""
    for block in code_blocks(path):
        if block.lang in ("bash", "sh", "shell", "python", "py"):
            assert block.mark is not None, f"{path.name}:{block.line}: a {block.lang} block without a test mark"
            assert block.mark in ("test", "tiny") or block.reason, f"{path.name}:{block.line}: no reason given"


def test_a_block_without_a_mark_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```bash\ndiffmorph demo\n```\n\n<!-- test: tiny -->\n```bash\ndiffmorph demo\n```\n")
    assert [(b.line, b.mark, b.code) for b in code_blocks(page)] == [
        (3, None, "diffmorph demo\n"),
        (8, "tiny", "diffmorph demo\n"),
    ]


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if ">>> " in p.read_text(encoding="utf-8")], ids=lambda p: p.name
)
def test_markdown_doctests(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0, result


def test_the_newest_changelog_entry_is_the_package_version():
    text = (REPO / "docs" / "changelog.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", text, flags=re.MULTILINE)
    assert versions and versions[0] == diffmorph.__version__, (versions[:2], diffmorph.__version__)
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True), versions


def test_the_docs_extra_is_in_the_test_requirements():
    """CI installs requirements-test.txt; the docs extra must not need more to build the site."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    extras = {"docs": re.findall(r'"([^"]+)"', re.search(r"^docs = \[(.*)\]", pyproject, re.MULTILINE)[1])}
    lines = (REPO / "requirements-test.txt").read_text(encoding="utf-8").splitlines()
    wanted = {re.split(r"[\[<>=; ]", line.strip())[0].lower() for line in lines if line.strip()[:1].isalnum()}
    docs = [re.split(r"[\[<>=; ]", r)[0].lower() for r in extras["docs"]]
    assert docs and set(docs) <= wanted, (docs, wanted)
    assert {"build", "setuptools"} <= wanted


def test_mkdocs_lists_every_page():
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", text, flags=re.MULTILINE))
    pages = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert listed == pages, (sorted(pages - listed), sorted(listed - pages))


def test_the_samples_are_found_in_the_checkout():
    pair = samples.sample_pair()
    assert pair.source == IMAGES / "astronaut.jpg" and pair.target == IMAGES / "cat.jpg"
    assert pair.points == (IMAGES / samples.POINTS if (IMAGES / samples.POINTS).is_file() else None)


def test_the_samples_prefer_the_package_data(tmp_path, monkeypatch):
    """An installed wheel has diffmorph/data/ (the package folder); it wins over a checkout's images/."""
    package = tmp_path / "diffmorph"
    (package / "io").mkdir(parents=True)
    (package / "data").mkdir()
    (tmp_path / "images").mkdir()
    for folder in (package / "data", tmp_path / "images"):
        (folder / "astronaut.jpg").write_bytes(b"x")
        (folder / "cat.jpg").write_bytes(b"x")
    (package / "data" / samples.POINTS).write_text("source_x,source_y,target_x,target_y\n1,1,1,1\n")
    monkeypatch.setattr(samples, "__file__", str(package / "io" / "samples.py"))
    pair = samples.sample_pair()
    assert pair.source == package / "data" / "astronaut.jpg" and pair.points == package / "data" / samples.POINTS
    (package / "data" / "astronaut.jpg").unlink()
    assert samples.sample_pair().source == tmp_path / "images" / "astronaut.jpg"
    (tmp_path / "images" / "astronaut.jpg").unlink()
    with pytest.raises(InputError) as error:
        samples.sample_pair()
    assert "sample images are missing" in one_line(error) and "reinstall diffmorph" in str(error.value)


def _anchor(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs make it: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_links_to_files_and_headings_that_exist():
    """MkDocs checks the pages' links; the README is not one of its pages, so its links are checked here."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(links) >= 20, links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        if path:
            assert (REPO / path).exists(), link
        else:
            assert anchor in headings, (link, sorted(headings))


def test_mkdocs_strict_is_not_quietened():
    """``mkdocs build -q`` hides the warnings, and then --strict does not fail on them: CI must not use -q."""
    for path in (REPO / ".ci" / "run", REPO / "README.md"):
        commands = re.findall(r"mkdocs build[^&\n]*", path.read_text(encoding="utf-8"))
        assert commands and all("--strict" in c and " -q" not in c for c in commands), (path, commands)
