"""The fenced code blocks of README.md and docs/**/*.md, with the test mark before each.

A mark is an HTML comment on the line before the fence: ``<!-- test -->`` (run as written),
``<!-- test: tiny -->`` (run with tiny working sizes, train steps and frames) or
``<!-- not tested: WHY -->``. ``docs/development.md`` describes the rules.
"""

import dataclasses
import pathlib
import re
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(?:(?P<test>test)(?::\s*(?P<tiny>tiny))?|not tested:(?P<why>[^>]*))\s*-->\s*$")

TINY_SIZE, TINY_TRAIN_STEPS, TINY_FRAMES = 32, 2, 3


@dataclasses.dataclass
class Block:
    path: pathlib.Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    mark: str | None  # "test", "tiny", "not tested" or None
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(path) -> list[Block]:
    """The fenced blocks of the Markdown file ``path``, in order."""
    path = pathlib.Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start, indent = index, fence["indent"]
        index += 1
        body = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        before = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "") if start else ""
        mark = _MARK.match(before)
        kind = None if mark is None else ("tiny" if mark["tiny"] else "test" if mark["test"] else "not tested")
        code = textwrap.dedent("\n".join(body)) + "\n"
        blocks.append(Block(path, start + 1, fence["lang"], code, kind, (mark["why"] or "").strip() if mark else ""))
        del indent
    return blocks


def tiny_command(line: str) -> str:
    """A ``diffmorph`` morph, demo, sequence or batch command line with tiny settings: the values of
    ``--size``, ``-e`` and ``--steps`` replaced, and those missing added (not ``--size``/``-e`` with
    ``--maps``, which reads them from the file), plus ``--plain`` (no XLA compilation) and ``-q``."""
    code, hash_, comment = line.partition(" #")
    words = code.split()
    if not words or words[0] != "diffmorph" or (len(words) > 1 and words[1] in ("report", "colour-transfer", "app")):
        return line
    code = re.sub(r"--size \d+", f"--size {TINY_SIZE}", code)
    code = re.sub(r"(?<=\s)-e \d+", f"-e {TINY_TRAIN_STEPS}", code)
    code = re.sub(r"--steps \d+", f"--steps {TINY_FRAMES}", code)
    maps = "--maps" in code
    added = []
    if not re.search(r"--size\s", code) and not maps:
        added += ["--size", str(TINY_SIZE)]
    if not re.search(r"\s-e\s", code) and not maps:
        added += ["-e", str(TINY_TRAIN_STEPS)]
    if "--steps" not in code:
        added += ["--steps", str(TINY_FRAMES)]
    added += [flag for flag in ("--plain", "-q") if flag not in code.split()]
    return f"{code.rstrip()} {' '.join(added)}" + (f" {hash_.strip()}{comment}" if hash_ else "")


def tiny_python(code: str) -> str:
    """Python code with ``size=``, ``train_steps=`` and ``frames=`` made tiny."""
    code = re.sub(r"\bsize=\d+", f"size={TINY_SIZE}", code)
    code = re.sub(r"\btrain_steps=\d+", f"train_steps={TINY_TRAIN_STEPS}", code)
    return re.sub(r"\bframes=\d+", f"frames={TINY_FRAMES}", code)
