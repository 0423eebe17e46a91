"""The documentation shows only code that runs: every Python, Kotlin and Swift block is
embedded from a file under ``examples/`` that a test runs or checks, every
``fraudkeras`` command shown parses with the real argument parser, and the LiteRT
names the mobile snippets use are the ones an exported file has."""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import numpy as np
import pytest
import tomllib

from fraudkeras._core.errors import ParameterError
from fraudkeras.cli import build_parser
from helpers import REPO, only_backend

pytestmark = only_backend("jax")  # reads files and parses commands: one backend is enough

PAGES = [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')
#: languages whose blocks must come from examples/ (shell commands are parsed instead)
EMBEDDED = {"python", "py", "kotlin", "swift"}
EXAMPLES = sorted(
    str(p.relative_to(REPO))
    for p in (REPO / "examples").rglob("*")
    if p.suffix in {".py", ".kt", ".swift"}
)
README_SETUP = (
    'python3 -m venv .venv && .venv/bin/pip install ".[jax,export]" && .venv/bin/fraudkeras '
    "train --backend jax --data sample --out runs/quickstart --force && .venv/bin/fraudkeras "
    "evaluate runs/quickstart && .venv/bin/fraudkeras export runs/quickstart --force",
    "python3 -m venv .venv-tox && .venv-tox/bin/pip install tox && .venv-tox/bin/tox",
)


def blocks(language: set[str]) -> list[tuple[Path, str]]:
    """(page, body) of every fenced block in one of ``language`` on every page."""
    found = []
    for page in PAGES:
        for match in FENCE.finditer(page.read_text()):
            if match["lang"] in language:
                indent = len(match["indent"])
                body = "".join(line[indent:] for line in match["body"].splitlines(True))
                found.append((page, body))
    return found


def commands(body: str) -> list[list[str]]:
    """The shell commands of a block: continuation lines joined, split at ``&&``, ``;``
    and pipes, comments dropped, leading ``VAR=value`` assignments removed."""
    found: list[list[str]] = []
    for line in body.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|;|\|", line):
            argv = shlex.split(part, comments=True)
            while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
                argv = argv[1:]
            if argv:
                found.append(argv)
    return found


def test_every_code_block_is_an_example_that_a_test_runs() -> None:
    """Docs pages embed examples/ files; the README (PyPI shows it raw) copies one in
    full. Each example is named by a test that runs it, and every page shows one."""
    tests = {p: p.read_text() for p in (REPO / "tests").rglob("*.py") if p.name != "test_docs.py"}
    tests[Path(__file__)] = Path(__file__).read_text().rsplit("def test_mobile_snippets", 1)[1]
    embedded = blocks(EMBEDDED)
    assert len(embedded) >= 8, "the pages lost their examples"
    used = set()
    for page, body in embedded:
        name = page.relative_to(REPO)
        if page.name == "README.md":
            path = next((p for p in EXAMPLES if (REPO / p).read_text() == body), None)
            assert path, f"{name}: a code block that is not a file under examples/"
        else:
            match = SNIPPET.match(body.strip())
            assert match, f'{name}: embed code from examples/ (--8<-- "examples/...")'
            path = match["path"]
        assert path in EXAMPLES, f"{name}: {path} is not under examples/"
        runners = [t for t, text in tests.items() if Path(path).name in text]
        assert runners, f"{name}: no test runs {path}"
        used.add(path)
    assert used == set(EXAMPLES), f"examples no page shows: {set(EXAMPLES) - used}"


def test_every_documented_command_parses() -> None:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ])  # fmt: skip
    checked = 0
    for page, body in blocks({"bash", "sh", "shell", "console"}):
        for argv in commands(body):
            where = f"{page.relative_to(REPO)}: {shlex.join(argv)}"
            if argv[0] == "torchrun":
                argv = argv[argv.index("-m") + 1 :]
            if Path(argv[0]).name == "fraudkeras":
                parser, subparsers = build_parser()
                try:
                    parser.parse_args(argv[1:])
                except ParameterError as error:
                    pytest.fail(f"{where}: {error}")
                assert argv[1] in subparsers, where
                checked += 1
            elif argv[0] == "python" and argv[1].startswith("scripts/"):
                source = (REPO / argv[1]).read_text()
                for option in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
                    assert f'"{option}"' in source, f"{where}: {argv[1]} has no {option}"
            elif Path(argv[0]).name == "pip" and argv[1] == "install":
                for spec in argv[2:]:
                    named = re.fullmatch(r"\.\[(?P<names>[\w,-]+)\]", spec)
                    if named:
                        unknown = set(named["names"].split(",")) - extras
                        assert not unknown, f"{where}: no extra {unknown}"
    assert checked >= 40, f"only {checked} fraudkeras commands found"


def test_readme_keeps_the_set_up_commands() -> None:
    readme = (REPO / "README.md").read_text()
    for command in README_SETUP:
        assert f"```bash\n{command}\n```" in readme
    assert len(readme.splitlines()) <= 200


def test_mobile_snippets_use_the_exported_signature(exported) -> None:
    """The Kotlin snippet runs signature ``serve`` by its input and output names; the
    Swift one by index 0, which is right only while the file has one of each."""
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    model = interpreter.Interpreter(model_path=str(exported[0] / "export/model_float32.tflite"))
    assert model.get_signature_list() == {
        "serve": {"inputs": ["transactions"], "outputs": ["fraud_probability"]}
    }
    assert len(model.get_input_details()) == len(model.get_output_details()) == 1
    kotlin = (REPO / "examples/mobile/FraudScorer.kt").read_text()
    assert re.search(r'"transactions" to .*"fraud_probability" to .*"serve"', kotlin, re.S)
    swift = (REPO / "examples/mobile/FraudScorer.swift").read_text()
    assert "toInputAt: 0" in swift and "output(at: 0)" in swift
    assert '"model_float32", ofType: "tflite"' in swift and '"model_float32.tflite"' in kotlin


def test_litert_example_gives_the_keras_model_probabilities(exported, trained_run) -> None:
    pytest.importorskip("ai_edge_litert")
    example = runpy.run_path(str(REPO / "examples/litert_predict.py"))
    x = trained_run.split.test.x[:64]
    expected = np.asarray(trained_run.model.predict(x, verbose=0), dtype=np.float64).ravel()
    for name in ("model_float32.tflite", "model_int8.tflite"):
        p = example["fraud_probabilities"](str(exported[0] / "export" / name), x)
        assert p.shape == (64,) and np.all((p >= 0) & (p <= 1))
        if name == "model_float32.tflite":
            np.testing.assert_allclose(p, expected, atol=1e-5)
