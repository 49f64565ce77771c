"""The Train tab: sessions → dataset → training → evaluation → the model the agent uses.

Three pages, one per step, and a job strip under them:

- **Data**: the session stores of the sessions folder (recorded in the app) plus any added with
  Add… (imported ones), each with its events, ticks, `correction` segments and length; the checked
  ones build a dataset (`ilbot build … --split-by session --holdout-frac 0.2`: with one session
  its last part by time is held out) into `WORKSPACE/datasets/<time>`.
- **Training**: dataset, config (built-in defaults, a shipped `configs/*.toml` or any file), a time
  cap in minutes (per invocation: Resume gets it again), the checkpoint to start from (empty: a new
  model; the shipped model: fine-tuned with its dataset rehearsed), extra `key=value` settings; Train starts
  `ilbot train --progress-json` into `WORKSPACE/runs/<time>`; the loss curves grow as the child
  reports (its metrics records, and the running training loss of each progress record, so a
  short run that logs no training record still draws a training curve); Resume continues the
  chosen run.
- **Models**: the runs folder's models with their headline figures (ilbot.gui.models_list), the one
  in use marked, the newest chosen when the panel opens; the chosen run's newest report shows
  below (ilbot.gui.report_view: its tables and plots); Evaluate runs `ilbot eval` into
  `RUN/reports/<time>` and shows that report.

Every step is a child process running the command line (ilbot.gui.train_process), one at a time;
the job strip shows its progress, the ETA (which honours the time cap), Cancel and (once a job
has run) its output. Cancelling a
training checkpoints it, so Resume continues where it stopped.

Signals: `use_model(str)` (a run folder: the main window loads it), `message(str)`,
`error(str)` (one line each, for the window's message area) and `job_finished(kind, ok, detail)`.
`WORKSPACE/train-index.json` remembers which dataset each run was trained on, so Resume and
Evaluate find it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                             QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QTabWidget, QTreeWidget,
                             QTreeWidgetItem, QVBoxLayout, QWidget)

from ..data.progress import format_duration
from ..errors import UserError
from ..sandbox import SHIPPED_DATASET, SHIPPED_MODEL
from ..training.config import parse_override
from .loss_curves import LossCurves
from .models_list import REPORTS, ModelsList, is_run
from .report_view import ReportView
from .sessions import SUFFIX, default_sessions_dir
from .train_process import CliJob, build_args, eval_args, train_args

DEFAULT_MAX_MINUTES = 10.0
INDEX = "train-index.json"
NEW_RUN = "a new one in the runs folder (Train); Resume continues the run chosen on the Models page"
SESSION_COLUMNS = ["session", "events", "ticks", "corrections", "length"]


def default_workspace() -> Path:
    """Where the app keeps datasets and runs: ILBOT_HOME, else ~/.ilbot."""
    return Path(os.environ.get("ILBOT_HOME") or Path.home() / ".ilbot")


def fine_tune_settings(settings: list[str], start: str) -> list[str]:
    """`settings` (key=value items, as `ilbot train --set` reads them) plus `init_from` = `start`
    (the *Start from* field) unless they name one, plus `data.rehearse` = the shipped dataset where
    they fine-tune the shipped model and name no rehearsal: a few minutes of a person's play would
    otherwise pull the model off what it knew (ilbot.training.rehearsal)."""
    keys = dict(parse_override(item) for item in settings)
    out = list(settings)
    if start and "init_from" not in keys:
        out.append(f"init_from={start}")
        keys["init_from"] = start
    init = str(keys.get("init_from") or "")
    if init and "data.rehearse" not in keys and SHIPPED_DATASET.is_dir() \
            and Path(init).resolve() == SHIPPED_MODEL.resolve():
        out.append(f"data.rehearse={SHIPPED_DATASET}")
    return out


def shipped_configs() -> list[Path]:
    """The training configs of this checkout (configs/*.toml beside the package), if any."""
    folder = Path(__file__).resolve().parents[2] / "configs"
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def unique_child(folder: Path, stem: str) -> Path:
    path = folder / stem
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}"
        n += 1
    return path


def split_settings(text: str) -> list[str]:
    """'epochs=3; optim.lr=1e-3' → ['epochs=3', 'optim.lr=1e-3'] (semicolons or new lines between)."""
    items = [s.strip() for s in text.replace("\n", ";").split(";")]
    bad = [s for s in items if s and "=" not in s]
    if bad:
        raise UserError(f"extra settings: {bad[0]!r} is not key=value")
    return [s for s in items if s]


def end_text(end: dict) -> str:
    """How a training invocation ended, from its `end` record, in the app's words."""
    n, total, reason = end.get("n"), end.get("total"), end.get("reason")
    cap = (end.get("cap_s") or 0) / 60
    if reason == "done":
        return f"done: {n}/{total} steps"
    if reason == "cap":
        return f"stopped by the {cap:g} min cap at step {n}/{total} (Resume trains for another {cap:g} min)"
    if reason == "cancelled":
        return f"cancelled at step {n}/{total}: checkpoint saved, Resume continues it"
    return f"{reason} at step {n}/{total}"


class TrainPanel(QWidget):
    use_model = pyqtSignal(str)
    message = pyqtSignal(str)
    error = pyqtSignal(str)
    job_finished = pyqtSignal(str, bool, str)  # kind (build/train/eval), ok, detail

    def __init__(self, sessions_dir: Path | None = None, workspace: Path | None = None,
                 current_model: Callable[[], str | None] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.sessions_dir = Path(sessions_dir) if sessions_dir else default_sessions_dir()
        self.workspace = Path(workspace) if workspace else default_workspace()
        self.current_model = current_model or (lambda: None)
        self.added: list[Path] = []  # stores added from elsewhere (imported)
        self.checked: set[Path] = set()
        self._summaries: dict[Path, tuple] = {}  # path → ((mtime, size), summary or error text)
        self.job: CliJob | None = None
        self.job_target: Path | None = None  # the dataset, run or report the job writes
        self.last_progress: dict = {}
        self.last_end: dict = {}
        self.last_summary: dict = {}
        self.run_path: Path | None = None  # the run the Training page works on

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.pages = QTabWidget()
        self.pages.addTab(self._data_page(), "1 Data")
        self.pages.addTab(self._train_page(), "2 Training")
        self.pages.addTab(self._models_page(), "3 Models")
        layout.addWidget(self.pages, 1)
        layout.addWidget(self._job_strip())
        self.refresh_sessions()
        if self.models.runs:  # the newest run is the one chosen: its curves on the Training page
            self.models.select(self.models.runs[0].path)
        self._update_buttons()

    # ---------------------------------------------------------------------------------- pages
    def _data_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        self.sessions_label = QLabel()
        self.sessions_label.setWordWrap(True)
        v.addWidget(self.sessions_label)
        self.session_tree = QTreeWidget()
        self.session_tree.setHeaderLabels(SESSION_COLUMNS)
        self.session_tree.setRootIsDecorated(False)
        self.session_tree.setToolTip("check the sessions to learn from; corrections are takeover segments")
        self.session_tree.itemChanged.connect(self._session_checked)
        v.addWidget(self.session_tree, 1)
        row = QHBoxLayout()
        for text, slot, tip in (("Folder…", self.choose_sessions_dir, "the folder the app records into"),
                                ("Add…", self.browse_add_sessions, "add session stores from elsewhere (imported ones)"),
                                ("Refresh", self.refresh_sessions, "read the sessions folder again")):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, s=slot: s())
            row.addWidget(b)
        v.addLayout(row)
        self.build_button = QPushButton("Build dataset")
        self.build_button.setToolTip("ilbot build on the checked sessions (one is enough: its end is held out)")
        self.build_button.clicked.connect(lambda: self.build_dataset())
        v.addWidget(self.build_button)
        return page

    def _train_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        form = QFormLayout()
        self.dataset_edit = QLineEdit()
        self.dataset_edit.setPlaceholderText("dataset folder (Build dataset fills it)")
        self.dataset_edit.setToolTip("the dataset to train on: a folder `ilbot build` (or Build dataset) wrote")
        browse = QPushButton("…")
        browse.setToolTip("choose a dataset folder")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self.browse_dataset)
        row = QHBoxLayout()
        row.addWidget(self.dataset_edit, 1)
        row.addWidget(browse)
        form.addRow("Dataset", row)
        self.config_combo = QComboBox()
        self.config_combo.setEditable(True)
        self.config_combo.addItem("")
        for path in shipped_configs():
            self.config_combo.addItem(str(path))
        self.config_combo.lineEdit().setPlaceholderText("built-in defaults")
        self.config_combo.setToolTip("training config TOML (empty: the built-in defaults)")
        cbrowse = QPushButton("…")
        cbrowse.setToolTip("choose a training config file")
        cbrowse.setMaximumWidth(30)
        cbrowse.clicked.connect(self.browse_config)
        row = QHBoxLayout()
        row.addWidget(self.config_combo, 1)
        row.addWidget(cbrowse)
        form.addRow("Config", row)
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.0, 10_000.0)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(DEFAULT_MAX_MINUTES)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setSpecialValueText("no cap")
        self.minutes_spin.setToolTip("time cap per invocation (0: none); Resume gets the whole cap again")
        form.addRow("Time cap", self.minutes_spin)
        self.start_combo = QComboBox()
        self.start_combo.setEditable(True)
        self.start_combo.addItem("")
        self.start_combo.addItem(str(SHIPPED_MODEL))
        self.start_combo.lineEdit().setPlaceholderText("a new model")
        self.start_combo.setToolTip("fine-tune: a checkpoint whose weights and normalisation the run starts from "
                                    "(the shipped model: its dataset is rehearsed too); empty: a new model")
        form.addRow("Start from", self.start_combo)
        self.settings_edit = QLineEdit()
        self.settings_edit.setPlaceholderText("key=value; key=value (e.g. epochs=20; optim.lr=1e-3)")
        self.settings_edit.setToolTip("config keys to override, as ilbot train --set")
        form.addRow("Settings", self.settings_edit)
        self.run_label = QLabel(NEW_RUN)
        self.run_label.setWordWrap(True)
        form.addRow("Run", self.run_label)
        v.addLayout(form)
        row = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("train a new model on the dataset (a separate process)")
        self.train_button.clicked.connect(lambda: self.start_training())
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("continue the run from its last checkpoint")
        self.resume_button.clicked.connect(lambda: self.start_training(resume=True))
        row.addWidget(self.train_button)
        row.addWidget(self.resume_button)
        v.addLayout(row)
        self.curves = LossCurves()
        v.addWidget(self.curves, 1)
        return page

    def _models_page(self) -> QWidget:
        split = QSplitter(Qt.Orientation.Vertical)
        self.models = ModelsList(self.workspace / "runs", self.current_model)
        self.models.use_requested.connect(self._use)
        self.models.evaluate_requested.connect(lambda run: self.evaluate(Path(run)))
        self.models.report_requested.connect(lambda folder: self.report.load(folder))
        self.models.selected.connect(lambda run: self._run_chosen(Path(run)))
        self.report = ReportView()
        split.addWidget(self.models)
        split.addWidget(self.report)
        split.setStretchFactor(1, 3)
        split.setSizes([150, 450])
        return split

    def _job_strip(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("no job running")
        self.progress_bar.setToolTip("the running build, training or evaluation; a training's ETA honours its time cap")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop the running job (a training checkpoints first: Resume continues it)")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        v.addLayout(row)
        self.status_label = QLabel("idle")
        self.status_label.setWordWrap(True)
        v.addWidget(self.status_label)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        lines = self.log_view.fontMetrics().lineSpacing()
        self.log_view.setMinimumHeight(3 * lines + 2 * self.log_view.frameWidth() + 8)
        self.log_view.setMaximumHeight(max(70, 4 * lines + 2 * self.log_view.frameWidth() + 8))
        self.log_view.setToolTip("the output of build, train and eval")
        self.log_view.hide()  # shown with a job's first line: until then the pages get the room
        v.addWidget(self.log_view)
        return box

    # ---------------------------------------------------------------------------------- sessions
    def set_sessions_dir(self, folder: Path) -> None:
        self.sessions_dir = Path(folder)
        self.refresh_sessions()

    def choose_sessions_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sessions folder", str(self.sessions_dir))
        if folder:
            self.set_sessions_dir(Path(folder))

    def browse_add_sessions(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add sessions", str(self.sessions_dir), f"Sessions (*{SUFFIX})")
        if paths:
            self.add_sessions([Path(p) for p in paths])

    def add_sessions(self, paths) -> None:
        """Add stores from elsewhere to the list, checked."""
        for p in map(Path, paths):
            if p not in self.added:
                self.added.append(p)
            self.checked.add(p)
        self.refresh_sessions()

    def session_paths(self) -> list[Path]:
        """Every listed store: the sessions folder's, newest first, then the added ones."""
        found = []
        if self.sessions_dir.is_dir():
            found = sorted(self.sessions_dir.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
        return found + [p for p in self.added if p not in found]

    def _summary(self, path: Path):
        """The store's summary (or its one-line error), re-read only when the file changed."""
        from ..data.session_summary import summarize_session

        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError as e:
            return f"cannot read ({e.strerror})"
        cached = self._summaries.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            result = summarize_session(path)
        except UserError as e:
            result = str(e)
        self._summaries[path] = (stamp, result)
        return result

    def refresh_sessions(self) -> None:
        paths = self.session_paths()
        self.sessions_label.setText(f"Sessions in {self.sessions_dir} (check the ones to learn from)" if paths else
                                    f"No sessions in {self.sessions_dir} yet: record one (Record, F7) or Add… "
                                    "an imported one")
        self.session_tree.blockSignals(True)
        self.session_tree.clear()
        for path in paths:
            s = self._summary(path)
            ok = not isinstance(s, str)
            if ok:
                cols = [path.name, str(s.n_events), str(s.n_ticks),
                        "—" if s.corrections is None else str(s.corrections), format_duration(s.duration_s)]
            else:
                cols = [path.name, "—", "—", "—", f"unreadable: {s}"]
            item = QTreeWidgetItem(cols)
            item.setData(0, Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(0, str(path))
            if ok:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if path in self.checked else Qt.CheckState.Unchecked)
            else:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.session_tree.addTopLevelItem(item)
        for i in range(len(SESSION_COLUMNS)):
            self.session_tree.resizeColumnToContents(i)
        self.session_tree.blockSignals(False)
        self._update_buttons()

    def _session_checked(self, item: QTreeWidgetItem, column: int) -> None:
        path = Path(item.data(0, Qt.ItemDataRole.UserRole))
        if item.checkState(0) == Qt.CheckState.Checked:
            self.checked.add(path)
        else:
            self.checked.discard(path)
        self._update_buttons()

    def check_sessions(self, paths, checked: bool = True) -> None:
        for p in map(Path, paths):
            (self.checked.add if checked else self.checked.discard)(p)
        self.refresh_sessions()

    def selected_sessions(self) -> list[Path]:
        return [p for p in self.session_paths() if p in self.checked]

    # ---------------------------------------------------------------------------------- browse
    def browse_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", str(self.workspace / "datasets"))
        if folder:
            self.dataset_edit.setText(folder)

    def browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", str(self.workspace), "TOML (*.toml)")
        if path:
            self.config_combo.setCurrentText(path)

    def set_run(self, run: Path | None) -> None:
        """The run the Training page shows and Resume continues (its curves, its dataset)."""
        self.run_path = Path(run) if run else None
        if self.run_path is None:
            self.run_label.setText(NEW_RUN)
        else:
            self.run_label.setText(str(self.run_path))
            if not self.busy:
                self.curves.load(self.run_path)
            data = self.dataset_of(self.run_path)
            if data is not None and not self.busy:
                self.dataset_edit.setText(str(data))
        self._update_buttons()

    def _run_chosen(self, run: Path) -> None:
        """A run chosen on the Models page: the Training page shows it, the report view its newest report."""
        self.set_run(run)
        info = self.models.info(run)
        if info is not None and info.report is not None:
            if self.report.folder != info.report:
                self.report.load(info.report)
        else:
            self.report.clear(f"no report for {run.name} yet: Evaluate makes one")

    # ---------------------------------------------------------------------------------- index
    def _index(self) -> dict:
        try:
            doc = json.loads((self.workspace / INDEX).read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _remember(self, run: Path, dataset: Path) -> None:
        doc = self._index()
        doc[str(Path(run).resolve())] = {"dataset": str(Path(dataset).resolve())}
        self.workspace.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.workspace / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.workspace / INDEX)

    def dataset_of(self, run: Path) -> Path | None:
        entry = self._index().get(str(Path(run).resolve()))
        if isinstance(entry, dict) and entry.get("dataset") and Path(entry["dataset"]).is_dir():
            return Path(entry["dataset"])
        return None

    # ---------------------------------------------------------------------------------- jobs
    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.running

    def _start_job(self, args: list[str], target: Path, status: str) -> bool:
        if self.busy:
            self.error.emit(f"wait for the running {self.job.kind} to end (or cancel it)")
            return False
        job = CliJob(args, self)
        job.output.connect(self._job_output)
        job.record.connect(self._job_record)
        job.done.connect(lambda code, err, j=job: self._job_done(j, code, err))
        self.job, self.job_target = job, target
        self.last_progress, self.last_end, self.last_summary = {}, {}, {}
        self.progress_bar.setRange(0, 0)  # busy until a training's first progress record (build/eval: throughout)
        self.progress_bar.setValue(0)
        self.status_label.setText(status)
        self.log_view.appendPlainText(f"$ {job.command_line}")
        self.log_view.show()
        self.message.emit(f"{status}: {job.command_line}")
        job.start()
        self._update_buttons()
        return True

    def build_dataset(self) -> bool:
        sessions = self.selected_sessions()
        if not sessions:
            self.error.emit("check at least one session to build a dataset from")
            return False
        out = unique_child(self.workspace / "datasets", time.strftime("%Y%m%d-%H%M%S"))
        out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._start_job(build_args(sessions, out), out,
                               f"building a dataset from {len(sessions)} session{'s' * (len(sessions) != 1)}")

    def _train_settings(self) -> list[str] | None:
        try:
            extra = fine_tune_settings(split_settings(self.settings_edit.text()), self.start_combo.currentText().strip())
        except UserError as e:
            self.error.emit(str(e))
            return None
        minutes = self.minutes_spin.value()
        return [f"max_minutes={minutes:g}"] + extra

    def _dataset_splits(self, data: Path) -> list[str]:
        try:
            meta = json.loads((data / "meta.json").read_text())
        except (OSError, ValueError):
            return []
        return list(meta.get("split_names") or [])

    def start_training(self, resume: bool = False) -> bool:
        """Train a new run on the dataset (or resume the chosen run) in a child process."""
        text = self.dataset_edit.text().strip()
        data = Path(text) if text else None
        if resume:
            if self.run_path is None or not (self.run_path / "last" / "train_state.json").is_file():
                self.error.emit("choose a run that has a last/ checkpoint to resume (Models page)")
                return False
            data = self.dataset_of(self.run_path) or data
        if data is None or not data.is_dir():
            self.error.emit(f"dataset {text or '(none)'} does not exist: build one on the Data page")
            return False
        settings = self._train_settings()
        if settings is None:
            return False
        splits = self._dataset_splits(data)
        if splits and "val" not in splits and not resume:
            settings.append("data.val_split=")
            self.message.emit(f"dataset {data.name} has no validation split: training without validation")
        if resume:
            run = self.run_path
            args = train_args(data, run, overrides=settings, resume=True)
            self.curves.load(run)
        else:
            run = unique_child(self.workspace / "runs", time.strftime("%Y%m%d-%H%M%S"))
            run.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            config = self.config_combo.currentText().strip() or None
            args = train_args(data, run, config=config, overrides=settings)
            self.curves.clear_curves()
        self._remember(run, data)
        self.run_path = run
        self.run_label.setText(str(run))
        cap = self.minutes_spin.value()
        return self._start_job(args, run, ("resuming " if resume else "training ") + run.name +
                               (f" (cap {cap:g} min for this invocation)" if cap else ""))

    def evaluate(self, run: Path | None = None) -> bool:
        """Evaluate a run on its dataset; the report goes to RUN/reports/<time>."""
        run = Path(run) if run else self.run_path
        if run is None:
            self.error.emit("choose a run to evaluate (Models page)")
            return False
        if not is_run(run):
            self.error.emit(f"{run} is not a training run")
            return False
        data = self.dataset_of(run)
        if data is None:
            text = self.dataset_edit.text().strip()
            data = Path(text) if text else None
        if data is None or not data.is_dir():
            self.error.emit(f"no dataset known for {run.name}: choose it on the Training page")
            return False
        out = unique_child(run / REPORTS, time.strftime("%Y%m%d-%H%M%S"))
        out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._start_job(eval_args(run, data, out), out, f"evaluating {run.name} on {data.name}")

    def cancel(self) -> None:
        if self.busy:
            self.status_label.setText(f"cancelling the {self.job.kind}…")
            self.job.cancel()

    def wait(self, ms: int) -> bool:
        """Block until the running job ends (tests, shutdown)."""
        return self.job.wait(ms) if self.job is not None else True

    def shutdown(self, wait_ms: int = 10_000) -> None:
        """Cancel a running job and wait for it (the app is closing)."""
        if self.busy:
            self.job.cancel()
            if not self.job.wait(wait_ms):
                self.job.proc.kill()
                self.job.wait(2000)

    # ---------------------------------------------------------------------------------- job output
    def _job_output(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _job_record(self, doc: dict) -> None:
        kind = doc.get("kind")
        if kind in ("train", "val"):
            self.curves.add(doc)
        elif kind == "progress":
            self.last_progress = doc
            self._show_progress(doc)
            if isinstance(doc.get("loss"), (int, float)) and isinstance(doc.get("n"), int) and doc["n"] > 0:
                # the running training loss between metrics points: short runs log none of those
                self.curves.add({"kind": "train", "step": doc["n"], "loss": doc["loss"]})
        elif kind == "end":
            self.last_end = doc
            self._show_progress(doc)
        elif "run" in doc and "steps" in doc:
            self.last_summary = doc

    def _show_progress(self, doc: dict) -> None:
        self.progress_bar.setRange(0, 1000)
        frac = float(doc.get("frac") or 0.0)
        self.progress_bar.setValue(int(round(frac * 1000)))
        self.progress_bar.setFormat(f"{frac:.0%}")
        n, total = doc.get("n", 0), doc.get("total", 0)
        cap = doc.get("cap_s")
        cap_text = f" · cap {cap / 60:g} min per invocation" if cap else ""
        if doc.get("kind") == "end":
            self.status_label.setText(end_text(doc))
            return
        loss = doc.get("loss")
        loss_text = f" · loss {loss:.4g}" if isinstance(loss, (int, float)) else ""
        self.status_label.setText(f"training: step {n}/{total} · {frac:.0%} · ETA {format_duration(doc.get('eta_s'))}"
                                  f"{cap_text}{loss_text}")

    def eta_text(self) -> str:
        return format_duration(self.last_progress.get("eta_s")) if self.last_progress else "–"

    def _job_done(self, job: CliJob, code: int, err: str) -> None:
        if job is not self.job:
            return
        kind, target = job.kind, self.job_target
        self.progress_bar.setRange(0, 1000)
        ok = code == 0
        if kind == "train":
            reason = self.last_end.get("reason", "")
            ok = code == 0 or (code == 130 and reason == "cancelled")
            detail = end_text(self.last_end) if reason else err or f"exit code {code}"
        elif job.cancelled:
            ok, detail = False, f"{kind} cancelled"
        else:
            detail = err or ("" if ok else f"exit code {code}")
        if kind == "build" and ok:
            self.dataset_edit.setText(str(target))
            detail = f"dataset built: {target}"
            self.pages.setCurrentIndex(1)
        elif kind == "train" and target is not None:
            self.models.refresh()
            self.models.select(target, quiet=True)
            if ok and self.last_end.get("reason") != "cancelled":
                detail = f"trained {target.name}: {detail}"
        elif kind == "eval" and ok:
            self.models.refresh()
            self.report.load(target)
            self.pages.setCurrentIndex(2)
            detail = f"report: {target}"
        if not ok or job.cancelled:
            self.progress_bar.setValue(self.progress_bar.value() if kind == "train" else 0)
        else:
            self.progress_bar.setValue(1000)
            self.progress_bar.setFormat("100%")
        self.status_label.setText(detail or f"{kind} done")
        (self.message if ok else self.error).emit(f"{kind}: {detail}" if detail else f"{kind} done")
        self._update_buttons()
        self.job_finished.emit(kind, ok, detail)

    # ---------------------------------------------------------------------------------- models
    def _use(self, run: str) -> None:
        self.use_model.emit(run)
        self.models.mark_in_use()

    def model_in_use(self) -> Path | None:
        return self.models.in_use()

    def showEvent(self, event) -> None:  # noqa: N802 - new recordings and loads appear when the tab shows
        super().showEvent(event)
        if not self.busy:
            self.refresh_sessions()
            self.models.refresh()

    def _update_buttons(self) -> None:
        busy = self.busy
        self.build_button.setEnabled(not busy and bool(self.selected_sessions()))
        self.train_button.setEnabled(not busy)
        resumable = self.run_path is not None and (self.run_path / "last" / "train_state.json").is_file()
        self.resume_button.setEnabled(not busy and resumable)
        self.cancel_button.setEnabled(busy)
        self.models.eval_button.setEnabled(not busy and self.models.selected_run() is not None)

