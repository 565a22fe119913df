"""The run folder (``--output-dir``): its files, their writing and reading, its lock and its state.

Everything that touches a run folder goes through :class:`RunDir` (training, the probe, the
study, the report); no other module spells a file name of it. A run folder holds::

    model/               the main classifier, a standard Hugging Face directory
    metrics.json         validation and test metrics of the best epoch (written last)
    config.yaml          the resolved configuration
    predictions.jsonl    test texts, gold, predicted label and probabilities
    history.json         the Trainer's log history (fine-tuned runs only, not the probe)
    confusability.json   mean weighting softmax per true class on validation
    test_embeddings.npy  the contrastive feature of every test text
    tensorboard/         TensorBoard event files (fine-tuned runs only)
    checkpoints/         the Trainer's epoch checkpoints while the run is unfinished
    .lcl.lock            while a process owns the folder: its pid, host and start time

What a run folder guarantees (see the README):

- **One owner.** A run claims its folder before writing anything: the lock file is created with
  ``O_CREAT | O_EXCL``. A second run into the same folder is refused, naming the owner; a lock
  left by a dead process of this host is taken over with a warning. The lock goes when the run
  ends, also on an error.
- **A run is finished** when ``metrics.json`` exists (it is written last, atomically). A finished
  run is replaced only with ``--overwrite``.
- **Resume only the same run.** An unfinished run resumes from its last *complete* checkpoint
  only when the saved ``config.yaml`` equals the new configuration in every field that changes
  results (:data:`IGNORED_FIELDS` may differ); otherwise the start is refused.
- **Complete checkpoints only.** A checkpoint counts once :data:`CHECKPOINT_MARKER` is written,
  after the Trainer has saved every file of it; a half-written one is removed with a warning.
- **Overwrite is safe.** ``--overwrite`` moves the old run's files aside (into ``.lcl-replaced``)
  and deletes them only once the new run has loaded its data and model; if it fails before,
  they are put back.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lcl.errors import LCLError
from lcl.io import atomic_save_npy, atomic_write_json, atomic_write_jsonl, atomic_write_text

logger = logging.getLogger(__name__)

MODEL = "model"
METRICS = "metrics.json"
CONFIG = "config.yaml"
PREDICTIONS = "predictions.jsonl"
HISTORY = "history.json"
CONFUSABILITY = "confusability.json"
EMBEDDINGS = "test_embeddings.npy"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
LOCK = ".lcl.lock"
ASIDE = ".lcl-replaced"
CHECKPOINT_MARKER = ".lcl-checkpoint-complete"

# every file a run writes, in no particular order (``--overwrite`` replaces exactly these)
RUN_FILES = (
    METRICS,
    CONFIG,
    PREDICTIONS,
    HISTORY,
    CONFUSABILITY,
    EMBEDDINGS,
    MODEL,
    TENSORBOARD,
    CHECKPOINTS,
)
# the files every finished run has (a probe run has no history.json nor tensorboard/)
FINISHED_FILES = (METRICS, CONFIG, PREDICTIONS, CONFUSABILITY, EMBEDDINGS, MODEL)
# configuration fields that do not change a run's results: a run may resume under other values
IGNORED_FIELDS = frozenset(
    {
        "output_dir",
        "overwrite",
        "keep_checkpoints",
        "checkpoint_minutes",
        "logging_steps",
        "eval_batch_size",
        "preset",
        "report_to",
    }
)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class RunExistsError(LCLError, FileExistsError):
    """The output folder already holds a finished run."""


class RunLockedError(LCLError, OSError):
    """Another live process owns the run folder (its lock file names it)."""


class RunConfigMismatchError(LCLError, ValueError):
    """The folder holds an unfinished run of another configuration: it must not be resumed."""


class OutputDirError(LCLError, ValueError):
    """``--output-dir`` is empty, not a folder, or the current folder with other files in it."""


class RunFolderError(LCLError, ValueError):
    """A file of a run folder is missing or unreadable."""


class CheckpointWriteError(LCLError, OSError):
    """A checkpoint could not be written (disk full, I/O error); the last complete one is kept."""


def format_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"  # pragma: no cover


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# --- the lock ----------------------------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _pid_alive(pid: int, start: str | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    if start is not None:
        now = _process_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
        if Path(f"/proc/{pid}/status").is_file():
            status = Path(f"/proc/{pid}/status").read_text()
            if re.search(r"^State:\s+Z", status, re.M):
                return False  # a zombie: dead, not yet reaped by its parent
    return True


@dataclass
class LockOwner:
    """Who holds a run folder's lock."""

    pid: int
    host: str
    started: str = ""
    proc_start: str | None = None

    def describe(self) -> str:
        since = f" since {self.started}" if self.started else ""
        return f"pid {self.pid} on {self.host}{since}"

    def is_alive(self) -> bool:
        """False only when the owner is surely dead (same host, no such process)."""
        if self.host != socket.gethostname():
            return True  # cannot tell: assume it runs
        return _pid_alive(self.pid, self.proc_start)


@dataclass
class RunLock:
    """A claimed run folder; :meth:`release` (or leaving the ``with`` block) gives it back."""

    path: Path
    owner: LockOwner
    released: bool = field(default=False)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            current = _read_lock(self.path)
            if current is None or (current.pid, current.host) == (self.owner.pid, self.owner.host):
                self.path.unlink(missing_ok=True)
        except OSError as err:
            logger.warning("could not remove the lock %s: %s", self.path, err)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_lock(path: Path) -> LockOwner | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        return LockOwner(
            int(data["pid"]),
            str(data["host"]),
            str(data.get("started", "")),
            data.get("proc_start"),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, OSError):
        return LockOwner(-1, "unknown host")  # unreadable: treated as held (cannot tell)


# --- the configuration comparison ------------------------------------------------------------


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Fields whose values differ between a saved ``config.yaml`` and a new configuration,
    except :data:`IGNORED_FIELDS` and the fields that neither configuration's objective reads
    (:data:`lcl.objectives.OBJECTIVE_FIELDS`: ``weighting`` of a CE run). A field the saved file
    lacks (a run of an older version) is compared with the field's default when that is a plain
    value, else skipped."""
    from dataclasses import MISSING, fields

    from lcl.objectives import unread_fields
    from lcl.training_args import FROM_PRESET, TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    unread = unread_fields(str(saved.get("loss"))) & unread_fields(str(new.get("loss")))
    differ = []
    for key, value in new.items():
        if key in IGNORED_FIELDS or key in unread:
            continue
        if key in saved:
            old = saved[key]
        elif defaults.get(key, FROM_PRESET) is not FROM_PRESET:
            old = defaults[key]
        else:
            continue
        if not _same(old, value):
            differ.append(key)
    return differ


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    return a == b


# --- the folder --------------------------------------------------------------------------------


class RunDir:
    """One run folder: file names, atomic writes, reads, lock, checkpoints and state."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # paths
    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    # state
    @property
    def is_finished(self) -> bool:
        """``metrics.json`` exists: it is written last, so every other output is there."""
        return (self.path / METRICS).is_file()

    @property
    def has_config(self) -> bool:
        return (self.path / CONFIG).is_file()

    @property
    def holds_run(self) -> bool:
        """A run of ``lcl`` is (or was) here: ``metrics.json``, ``config.yaml`` or a checkpoint."""
        return self.is_finished or self.has_config or bool(self.checkpoints())

    def foreign_outputs(self) -> list[str]:
        """Entries named like a run's files in a folder that holds no run (never replaced)."""
        if self.holds_run:
            return []
        return [n for n in RUN_FILES if (self.path / n).exists() or (self.path / n).is_symlink()]

    def missing_files(self, history: bool = True) -> list[str]:
        """Files of a finished run that are absent (``history``: a fine-tuned run's too)."""
        names = FINISHED_FILES + ((HISTORY,) if history else ())
        return [n for n in names if not (self.path / n).exists()]

    def state(self) -> str:
        """``finished``, ``unfinished`` (something of a run is there), or ``empty``."""
        if self.is_finished:
            return "finished"
        if any((self.path / n).exists() for n in RUN_FILES):
            return "unfinished"
        return "empty"

    # writing (every file atomically; metrics.json last)
    def write_config(self, config) -> Path:
        return atomic_write_text(self.path / CONFIG, config.to_yaml())

    def write_history(self, history: list[dict]) -> Path:
        return atomic_write_json(self.path / HISTORY, history)

    def write_confusability(self, payload: dict) -> Path:
        return atomic_write_json(self.path / CONFUSABILITY, payload)

    def write_embeddings(self, array) -> Path:
        return atomic_save_npy(self.path / EMBEDDINGS, array)

    def write_predictions(self, rows: list[dict]) -> Path:
        return atomic_write_jsonl(self.path / PREDICTIONS, rows)

    def write_metrics(self, metrics: dict) -> Path:
        """The last file of a run: once it exists, the run is finished."""
        return atomic_write_json(self.path / METRICS, metrics)

    # reading
    def _read_json(self, name: str) -> Any:
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunFolderError(f"{path}: no such file (is {self.path} a finished run?)") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise RunFolderError(f"{path}: not valid JSON ({err})") from None

    def read_metrics(self) -> dict:
        return self._read_json(METRICS)

    def read_confusability(self) -> dict:
        return self._read_json(CONFUSABILITY)

    def read_history(self) -> list[dict] | None:
        """The log history, or ``None`` for a run without one (a probe run)."""
        return self._read_json(HISTORY) if (self.path / HISTORY).exists() else None

    def read_predictions(self) -> list[dict]:
        path = self.path / PREDICTIONS
        rows = []
        try:
            with path.open(encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except ValueError as err:
                            raise RunFolderError(
                                f"{path}:{line_no}: not valid JSON ({err})"
                            ) from None
        except FileNotFoundError:
            raise RunFolderError(f"{path}: no such file") from None
        return rows

    def read_embeddings(self):
        import numpy as np

        return np.load(self.path / EMBEDDINGS, allow_pickle=False)

    def read_config(self) -> dict[str, Any]:
        """``config.yaml`` as a mapping (raw values, as saved)."""
        from lcl.training_args import ConfigError, read_yaml_mapping

        try:
            return read_yaml_mapping(self.path / CONFIG)
        except ConfigError as err:  # the same reader as --config; a run folder's error here
            raise RunFolderError(str(err)) from None

    # checkpoints
    def checkpoints(self) -> list[Path]:
        """Every ``checkpoint-N`` folder, by step."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [
            (int(m.group(1)), p)
            for p in self.checkpoint_dir.iterdir()
            if p.is_dir() and (m := _CHECKPOINT.match(p.name))
        ]
        return [p for _, p in sorted(found)]

    @staticmethod
    def checkpoint_step(path: str | Path | None) -> int:
        """The training step of a ``checkpoint-N`` folder (0 for ``None``: a fresh start)."""
        if path is None:
            return 0
        m = _CHECKPOINT.match(Path(path).name)
        if not m:
            raise RunFolderError(f"not a checkpoint folder: {path}")
        return int(m.group(1))

    @staticmethod
    def is_complete_checkpoint(path: Path) -> bool:
        """Trainer state, model weights and our marker (written after all of them)."""
        return (
            (path / CHECKPOINT_MARKER).is_file()
            and (path / "trainer_state.json").is_file()
            and any((path / w).is_file() for w in _WEIGHTS)
        )

    @staticmethod
    def mark_checkpoint_complete(path: Path) -> None:
        """Flush every file of a saved checkpoint to disk, then write the marker."""
        for root, _, files in os.walk(path):
            for name in files:
                try:
                    fd = os.open(os.path.join(root, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.fsync(fd)
                except OSError:
                    pass
                finally:
                    os.close(fd)
        atomic_write_json(
            path / CHECKPOINT_MARKER, {"completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        )

    def last_checkpoint(self) -> Path | None:
        """The complete checkpoint of the highest step, or ``None``."""
        complete = [p for p in self.checkpoints() if self.is_complete_checkpoint(p)]
        return complete[-1] if complete else None

    def checkpoint_progress(self) -> tuple[int, int, float] | None:
        """(step, steps in all, epoch) of the last complete checkpoint, from the Trainer's
        ``trainer_state.json``; ``None`` without one (or with an unreadable state)."""
        last = self.last_checkpoint()
        if last is None:
            return None
        try:
            state = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
            return int(state["global_step"]), int(state["max_steps"]), float(state["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove_incomplete_checkpoints(self) -> list[Path]:
        """Delete half-written checkpoints (a kill or a full disk while saving), with a warning."""
        removed = []
        for path in self.checkpoints():
            if not self.is_complete_checkpoint(path):
                logger.warning(
                    "skipping the incomplete checkpoint %s (the run was stopped while "
                    "saving it); it is removed and never resumed",
                    path,
                )
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def checkpoint_bytes(self) -> int:
        return folder_bytes(self.checkpoint_dir) if self.checkpoint_dir.exists() else 0

    def remove_checkpoints(self) -> int:
        size = self.checkpoint_bytes()
        if self.checkpoint_dir.exists():
            shutil.rmtree(self.checkpoint_dir)
        return size

    def remove_outputs(self, keep: tuple[str, ...] = ()) -> int:
        """Delete every file a run writes (except ``keep``); other files stay. Returns bytes."""
        size = 0
        for name in RUN_FILES:
            target = self.path / name
            if name not in keep and (target.exists() or target.is_symlink()):
                size += folder_bytes(target)
                _remove(target)
        return size

    def cleanup_hint(self) -> str:
        size = self.checkpoint_bytes()
        taken = f"its checkpoints take {format_bytes(size)}; " if size else ""
        return (
            f"{taken}remove them with --overwrite (the next run replaces this one) or "
            f"`lcl clean {self.path}`"
        )

    # the lock
    def lock_owner(self) -> LockOwner | None:
        return _read_lock(self.lock_path)

    def is_locked(self) -> bool:
        """A live process (or one on another host) holds the folder."""
        owner = self.lock_owner()
        return owner is not None and owner.is_alive()

    def claim(self) -> RunLock:
        """Create the lock file exclusively: this process owns the folder from now on.

        Raises :class:`RunLockedError` naming the owner while another process holds it; a lock
        of a dead process of this host is taken over with a warning.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        me = LockOwner(
            os.getpid(),
            socket.gethostname(),
            time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            _process_start(os.getpid()),
        )
        payload = json.dumps(
            {"pid": me.pid, "host": me.host, "started": me.started, "proc_start": me.proc_start}
        ).encode("utf-8")
        for _ in range(5):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.lock_owner()
                if owner is None:
                    continue  # released meanwhile: try again
                if owner.is_alive():
                    where = (
                        "; if it is not running, delete the lock file"
                        if owner.host != me.host or owner.pid < 0
                        else ""
                    )
                    raise RunLockedError(
                        f"{self.path} is in use by another run ({owner.describe()}; lock file "
                        f"{self.lock_path}){where}: wait for it or choose another --output-dir"
                    ) from None
                self._take_over(owner)
                continue
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            return RunLock(self.lock_path, me)
        raise RunLockedError(f"{self.path}: could not claim the lock file {self.lock_path}")

    def _take_over(self, stale: LockOwner) -> None:
        """Move a dead owner's lock away (atomically: one of several claimants wins)."""
        aside = self.lock_path.with_name(f"{LOCK}.stale-{os.getpid()}")
        try:
            os.rename(self.lock_path, aside)
        except FileNotFoundError:
            return
        moved = _read_lock(aside)
        if moved is not None and (moved.pid, moved.host) != (stale.pid, stale.host):
            # another claimant took over and locked in between: give its lock back
            try:
                os.link(aside, self.lock_path)
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            return
        aside.unlink(missing_ok=True)
        logger.warning(
            "%s: taking over the lock of a process that no longer runs (%s)",
            self.path,
            stale.describe(),
        )

    # --overwrite: the old run is moved aside, deleted only once the new one has loaded
    @property
    def aside_dir(self) -> Path:
        return self.path / ASIDE

    def move_aside(self) -> Path:
        aside = self.aside_dir
        if aside.exists():
            shutil.rmtree(aside)
        aside.mkdir()
        for name in RUN_FILES:
            if (self.path / name).exists() or (self.path / name).is_symlink():
                os.rename(self.path / name, aside / name)
        return aside

    def restore_aside(self) -> None:
        aside = self.aside_dir
        if not aside.is_dir():
            return
        for name in RUN_FILES:
            if (aside / name).exists() or (aside / name).is_symlink():
                if (self.path / name).exists():
                    _remove(self.path / name)
                os.rename(aside / name, self.path / name)
        shutil.rmtree(aside, ignore_errors=True)

    def discard_aside(self) -> None:
        if self.aside_dir.exists():
            shutil.rmtree(self.aside_dir)

    def check_location(self, raw: str | None = None) -> None:
        """Refuse an empty ``--output-dir``, a file, or the current folder with other files."""
        raw = str(self.path) if raw is None else raw
        if not str(raw).strip():
            raise OutputDirError("--output-dir must not be empty")
        if self.path.exists() and not self.path.is_dir():
            raise OutputDirError(f"--output-dir {raw}: exists and is not a folder")
        try:
            here = self.path.resolve() == Path.cwd().resolve()
        except OSError:
            here = False
        if here:
            other = sorted(
                p.name
                for p in self.path.iterdir()
                if p.name not in RUN_FILES and p.name not in (LOCK, ASIDE)
            )
            if other:
                raise OutputDirError(
                    f"--output-dir {raw!r} is the current folder, which holds other files "
                    f"({', '.join(other[:3])}{', ...' if len(other) > 3 else ''}): "
                    "give a folder of its own, e.g. --output-dir runs/NAME"
                )


# --- the start of a run ------------------------------------------------------------------------


@dataclass
class RunStart:
    """What :func:`start_run` decided: the lock (rank 0), the checkpoint to resume, the aside."""

    run: RunDir
    lock: RunLock | None = None
    resume_from: Path | None = None
    replacing: bool = False  # an old run waits in .lcl-replaced until commit()
    created: bool = False  # the folder did not exist before this run

    def commit(self) -> None:
        """The new run has loaded its data and model: the replaced run goes for good."""
        if self.replacing:
            self.run.discard_aside()
            self.replacing = False

    def close(self, ok: bool) -> None:
        """End of the run (``ok``) or its failure: put a replaced run back, release the lock,
        remove a folder this run created and left empty."""
        try:
            if not ok and self.replacing:
                self.run.restore_aside()
                logger.warning(
                    "%s: the run failed before training; the previous run is back", self.run.path
                )
                self.replacing = False
        finally:
            if self.lock is not None:
                self.lock.release()
            if not ok and self.created:
                try:
                    self.run.path.rmdir()  # only when empty
                except OSError:
                    pass


def check_resumable(config, run: RunDir) -> None:
    """Refuse (read-only, on every rank) a folder this configuration may not write into."""
    foreign = run.foreign_outputs()
    if foreign:
        raise OutputDirError(
            f"{run.path} holds {', '.join(foreign)} but no run of lcl (no config.yaml, "
            "metrics.json or checkpoint): they would be replaced; choose another --output-dir"
        )
    if run.is_finished and not config.overwrite:
        raise RunExistsError(
            f"{run.path} already holds a finished run (metrics.json); "
            "choose another --output-dir or pass --overwrite"
        )
    if config.overwrite or run.is_finished:
        return
    if run.has_config:
        differ = config_differences(run.read_config(), config.to_dict())
        if differ:
            saved = run.read_config()
            shown = ", ".join(
                f"{k} ({saved.get(k, 'unset')!r} -> {getattr(config, k)!r})" for k in differ[:6]
            )
            more = f" and {len(differ) - 6} more" if len(differ) > 6 else ""
            raise RunConfigMismatchError(
                f"{run.path} holds an unfinished run of another configuration; differing: "
                f"{shown}{more}. Resuming would mix the two: pass --overwrite to start afresh "
                f"(or another --output-dir); {run.cleanup_hint()}"
            )
    elif run.last_checkpoint() is not None:
        raise RunConfigMismatchError(
            f"{run.path} holds checkpoints but no config.yaml: cannot tell whether they belong to "
            f"this configuration. Pass --overwrite to start afresh; {run.cleanup_hint()}"
        )


def start_run(config, is_main: bool = True) -> RunStart:
    """Claim and prepare ``config.output_dir`` for a run (rank 0 only claims and changes it).

    Checks the location, claims the lock, checks whether the folder may be written
    (:func:`check_resumable`; other ranks only check), and then: with ``--overwrite`` moves the old run aside; otherwise removes
    half-written checkpoints, and resumes from the last complete one of an equal configuration
    or clears an unfinished run's leftovers to start fresh.
    """
    run = RunDir(config.output_dir)
    run.check_location(config.output_dir)
    if not is_main:
        check_resumable(config, run)
        return RunStart(run)
    start = RunStart(run, created=not run.path.exists())
    start.lock = run.claim()  # first: a live owner is named before anything else is said
    try:
        if run.aside_dir.exists():  # a run killed between moving an old run aside and loading
            logger.warning(
                "%s: restoring the run an interrupted --overwrite had moved aside", run.path
            )
            run.restore_aside()
        check_resumable(config, run)
        if config.overwrite and run.state() != "empty":
            run.move_aside()
            start.replacing = True
            return start
        run.remove_incomplete_checkpoints()
        start.resume_from = run.last_checkpoint()
        if start.resume_from is None and run.state() == "unfinished":
            run.remove_outputs()  # a run killed before its first checkpoint: start fresh
        elif start.resume_from is not None:
            logger.warning(
                "%s: resuming from %s (checkpoints take %s)",
                run.path,
                start.resume_from.name,
                format_bytes(run.checkpoint_bytes()),
            )
    except BaseException:
        start.close(ok=False)
        raise
    return start


def clean(path: str | os.PathLike[str]) -> int:
    """``lcl clean RUN_DIR``: delete a run's checkpoints (an unfinished run: all it left).

    A finished run keeps its outputs and loses only ``checkpoints/``; an unfinished (killed) run
    loses everything it wrote, so the folder can take any new run. Refused while a live process
    owns the folder. Returns the bytes freed.
    """
    run = RunDir(path)
    if not run.path.is_dir():
        raise RunFolderError(f"{run.path}: no such run folder")
    if not (run.holds_run or run.lock_path.exists() or run.aside_dir.exists()):
        raise RunFolderError(
            f"{run.path} is not a run folder (no config.yaml, metrics.json or "
            "checkpoint): nothing to clean"
        )
    with run.claim():
        if run.aside_dir.exists():
            run.restore_aside()
        if run.is_finished:
            return run.remove_checkpoints()
        return run.remove_outputs()
