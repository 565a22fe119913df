"""Errors: every error a user can cause is an LCLError; the CLI maps exactly those to exit 2."""

from __future__ import annotations

import pytest

from lcl import cli
from lcl.cli import main
from lcl.errors import LCLError


def _user_error_classes():
    from lcl.data import DataError, DatasetNotFoundError, UnknownDatasetError
    from lcl.data.wordnet import WordNetNotFoundError
    from lcl.inference import LabelMismatchError, UnknownSplitError
    from lcl.modeling import ModelLoadError
    from lcl.report import ReportError
    from lcl.trainer import RunExistsError
    from lcl.training_args import ConfigError

    return {  # class -> the builtin it derived from before LCLError, still a base
        ConfigError: ValueError,
        DataError: ValueError,
        DatasetNotFoundError: ValueError,
        UnknownDatasetError: ValueError,
        ModelLoadError: ValueError,
        LabelMismatchError: ValueError,
        UnknownSplitError: ValueError,
        ReportError: ValueError,
        RunExistsError: FileExistsError,
        WordNetNotFoundError: RuntimeError,
    }


def test_user_errors_share_one_base_and_keep_their_builtin():
    for cls, builtin in _user_error_classes().items():
        assert issubclass(cls, LCLError) and issubclass(cls, builtin), cls


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("lcl: error:") and "Traceback" not in err and err.count("\n") == 1
    return err


def test_an_lcl_error_is_one_line_and_exit_2(monkeypatch, capsys):
    class MadeUpError(LCLError):
        pass

    def fail(args):
        raise MadeUpError("the thing you asked for\nis not there")

    monkeypatch.setitem(cli.COMMANDS, "datasets", fail)
    assert main(["datasets"]) == 2
    assert "the thing you asked for" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug"),
        ValueError("a bug"),
        KeyError("a bug"),
        OSError("a bug with no file name"),
    ],
)
def test_an_unexpected_exception_shows_its_traceback(monkeypatch, error):
    def fail(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "datasets", fail)
    with pytest.raises(type(error)):
        main(["datasets"])


def test_predict_without_texts_is_a_usage_error(capsys):
    assert main(["predict", "--model", "whatever"]) == 2
    assert "no texts to classify" in _one_error_line(capsys)


def test_a_missing_input_file_is_one_line(tmp_path, capsys):
    assert main(["predict", "--model", "whatever", "--input", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt" in _one_error_line(capsys)


def test_a_report_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "no-run")]) == 2
    assert "no-run" in _one_error_line(capsys)
