"""Shared fixtures for integration tests: the real postern binary, config
files written to a temporary directory, and the conformance data."""
import os
import pathlib
import subprocess

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]


def _bin(env, default):
    p = os.environ.get(env) or str(TOP / default)
    if not os.access(p, os.X_OK):
        pytest.skip(f"{p} not built")
    return p


@pytest.fixture(scope="session")
def postern_bin():
    return _bin("POSTERN_BIN", "build/postern")


@pytest.fixture(scope="session")
def postern_auth_bin():
    return _bin("POSTERN_AUTH_BIN", "build/postern-auth")


@pytest.fixture(scope="session")
def conformance_dir():
    d = pathlib.Path(os.environ.get("POSTERN_CONFORMANCE") or TOP.parent / "shared" / "conformance")
    if not d.is_dir():
        pytest.skip(f"conformance data not found at {d}")
    return d


@pytest.fixture
def write_config(tmp_path):
    """write_config(text) -> path of a config file holding text."""
    n = [0]

    def write(text, name=None):
        n[0] += 1
        p = tmp_path / (name or f"postern{n[0]}.conf")
        p.write_text(text)
        return str(p)
    return write


def run(args, input=None, timeout=60, env=None):
    """Run a command, return CompletedProcess with text output."""
    return subprocess.run(args, input=input, capture_output=True, text=True,
                          timeout=timeout, env=env)
