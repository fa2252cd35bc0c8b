"""What of a notebook's ``-p`` parameters is published (pure functions; the kernel run is in test_notebook_runner)."""

from __future__ import annotations

import nbformat

from deriva_ml.execution.notebook_runner import inject_parameters, publishable, redacted_parameters


def test_secret_named_parameters_are_redacted_whatever_their_type() -> None:
    params = {"api_token": "abc", "db_password": 1234, "key": 5, "learning_rate": 0.5, "name": "run 1"}
    assert redacted_parameters(params) == {
        "api_token": "<redacted>",
        "db_password": "<redacted>",
        "key": "<redacted>",
        "learning_rate": 0.5,
        "name": "run 1",
    }


def test_credentials_in_values_are_scrubbed() -> None:
    out = redacted_parameters(
        {"db_url": "postgres://alice:pw@db.example.org/x", "token_file": "", "gh": "ghp_" + "a" * 36}
    )
    assert out["db_url"] == "postgres://db.example.org/x"
    assert out["gh"] == "<redacted>"


def test_publishable_rewrites_only_the_injected_cell() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("api_token = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(api_token)"),
    ]
    params = {"api_token": "s3cr3t-value", "epochs": 3}
    ran = inject_parameters(nb, params)
    assert "s3cr3t-value" in ran.cells[1].source  # the kernel gets the real value
    out = publishable(ran, params)
    assert [c.source for c in out.cells] == [
        "api_token = None",
        "# Parameters injected by deriva-ml-run-notebook\napi_token = '<redacted>'\nepochs = 3\n",
        "print(api_token)",
    ]
