"""Every limit and batching flag of ``fraudkeras serve`` refuses zero (where zero is
not a documented value), negatives, numbers past its range and non-numbers with
one error line naming the flag and exit 2, before the model is even opened (so no
port is bound). The model named does not exist: a value let through would end
with the missing model's error (exit 5) instead. The ranges are docs/serving.md's."""

from __future__ import annotations

import pytest

from fraudkeras.cli import main
from helpers import run_cli

MISSING = "no-such-model-folder"
HUGE_INT, HUGE_FLOAT = str(10**20), "1e20"
#: integer flags where 0 is refused, and their smallest allowed value
COUNTS = {
    "--max-header-bytes": 1024, "--max-connections": 1, "--grpc-max-concurrent-rpcs": 1,
    "--grpc-threads": 1, "--max-batch-size": 1, "--num-batch-threads": 1,
    "--max-queued-requests": 1, "--workers": 1,
}  # fmt: skip
#: seconds flags where 0 is refused
TIMEOUTS = ("--read-timeout", "--inference-timeout", "--poll-seconds")
#: flags where 0 is documented (no wait, no deregistering, no drain, no gRPC port)
ZERO_ALLOWED = ("--batch-timeout-micros", "--drain-seconds", "--deregister-seconds", "--port",
                "--grpc-port")  # fmt: skip


def _bad_cases() -> list[tuple[str, str]]:
    cases = []
    for flag, smallest in COUNTS.items():
        cases += [(flag, v) for v in ("0", "-1", str(smallest - 1), "1.5", "x", "", HUGE_INT)]
    for flag in TIMEOUTS:
        cases += [(flag, v) for v in ("0", "-1", "x", "nan", "inf", "-inf", HUGE_FLOAT)]
    cases += [("--batch-timeout-micros", v) for v in ("-1", "0.5", "x", HUGE_INT)]
    for flag in ("--drain-seconds", "--deregister-seconds"):
        cases += [(flag, v) for v in ("-1", "-0.001", "x", "nan", "inf", HUGE_FLOAT)]
    for flag in ("--port", "--grpc-port"):
        cases += [(flag, v) for v in ("-1", "65536", "x", "80.5")]
    return cases


def test_bad_limit_values_are_one_error_naming_the_flag(capsys: pytest.CaptureFixture[str]):
    failures = []
    for flag, value in _bad_cases():
        code = main(["serve", MISSING, flag, value])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        ok = (code == 2 and len(lines) == 1 and lines[0].startswith("fraudkeras: error:")
              and flag in lines[0] and "Traceback" not in err)  # fmt: skip
        if not ok:
            failures.append(f"{flag} {value!r}: exit {code}: {err.strip()!r}")
    assert not failures, "\n".join(failures)


def test_documented_edge_values_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    """The control: zero where documented and each range's ends reach the model."""
    accepted = [(flag, "0") for flag in ZERO_ALLOWED] + [
        *((flag, str(smallest)) for flag, smallest in COUNTS.items()),
        ("--max-header-bytes", str(8 * 1024 * 1024)), ("--num-batch-threads", "256"),
        ("--grpc-threads", "1024"), ("--workers", "256"), ("--read-timeout", "0.001"),
        ("--inference-timeout", "86400"), ("--poll-seconds", "0.05"),
        ("--drain-seconds", "3600"), ("--batch-timeout-micros", "3600000000"),
    ]  # fmt: skip
    for flag, value in accepted:
        code = main(["serve", MISSING, flag, value])
        err = capsys.readouterr().err
        assert code == 5 and MISSING in err, f"{flag} {value}: {err}"


def test_the_command_as_typed_exits_2_with_one_line() -> None:
    result = run_cli("serve", MISSING, "--grpc-port", "0", "--num-batch-threads", "100000")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--num-batch-threads" in lines[0] and "256" in lines[0], lines
    assert "Traceback" not in result.stderr and not result.stdout
