"""The DREAMS transfer-study example (examples/dreams_transfer_study.py): finding its inputs,
failing clearly without them, and the reStructuredText tables of docs/dreams_study.rst."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from skseqsleep.study import STRATEGIES, TableRow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "dreams_transfer_study.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("dreams_transfer_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_shared(root: Path, *, dreams=True, checkpoint=True) -> Path:
    """A folder laid out like ../shared (empty files: only their presence is checked)."""
    if dreams:
        d = root / "data" / "dreams"
        d.mkdir(parents=True)
        (d / "excerpt1.txt").write_text("[C3-A1]\n1.0\n")
        (d / "Hypnogram_excerpt1.txt").write_text("[Hypnogram]\n2\n")
    if checkpoint:
        c = root / "pretrained" / "phan2019-mass" / "1chan_eeg"
        c.mkdir(parents=True)
        (c / "pretrained_model.ckpt.index").write_bytes(b"")
    return root


def test_inputs_found_under_the_shared_folder_and_through_the_environment(example, tmp_path):
    shared = _fake_shared(tmp_path)
    expected = (shared / "data" / "dreams",
                shared / "pretrained" / "phan2019-mass" / "1chan_eeg" / "pretrained_model.ckpt")
    assert example.locate_inputs(shared, environ={}) == expected
    assert example.locate_inputs(environ={"SKSEQSLEEP_SHARED": str(shared)}) == expected
    # the checkpoint's folder stands for the prefix inside it; explicit paths need no shared
    assert example.locate_inputs(dreams=expected[0], checkpoint=expected[1].parent,
                                 environ={}) == expected


def test_missing_inputs_are_clear_errors(example, tmp_path):
    with pytest.raises(FileNotFoundError, match="SKSEQSLEEP_SHARED"):
        example.locate_inputs(environ={})
    with pytest.raises(FileNotFoundError, match=r"--checkpoint"):
        example.locate_inputs(dreams=tmp_path, environ={})
    no_ckpt = _fake_shared(tmp_path / "a", checkpoint=False)
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*expected the file "
                                                 r".*pretrained_model\.ckpt\.index"):
        example.locate_inputs(no_ckpt, environ={})
    no_dreams = _fake_shared(tmp_path / "b", dreams=False)
    with pytest.raises(FileNotFoundError, match=r"DREAMS folder not found: .*data/dreams"):
        example.locate_inputs(no_dreams, environ={})
    empty = tmp_path / "c"
    (empty / "data" / "dreams").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no excerptN.txt"):
        example.locate_inputs(empty, environ={})


def test_command_line_without_data_exits_with_a_usage_error(example, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.delenv("SKSEQSLEEP_SHARED", raising=False)
    with pytest.raises(SystemExit) as info:
        example.main(["--output-dir", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "no data location given" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing started


def test_bad_options_exit_with_a_usage_error_not_a_traceback(example, tmp_path, capsys):
    shared = _fake_shared(tmp_path / "shared")
    for option, match in ((["--threads", "0"], "torch_threads must be a positive integer"),
                          (["--strategies", "foo"], "foo")):
        with pytest.raises(SystemExit) as info:
            example.main(["--shared", str(shared), "--output-dir", str(tmp_path / "out"),
                          *option])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_checkpoint_given_as_its_index_file_or_folder(example, tmp_path):
    shared = _fake_shared(tmp_path)
    prefix = shared / example.CHECKPOINT_SUBPATH
    for given in (prefix, Path(f"{prefix}.index"), prefix.parent):
        assert example.locate_inputs(shared, checkpoint=given, environ={})[1] == prefix


def test_strategies_are_read_as_the_command_line_reads_them(example):
    # "all" was taken for "every strategy" here, where skseqsleep study runs the
    # entire-network strategy only: the same option ran 6 strategies or 1
    from skseqsleep.cli import build_parser

    cli = build_parser().parse_args(["study", "--strategies", "all"]).strategies
    assert example.parse_strategies("all") == ["all"] == cli.split(",")
    assert STRATEGIES["all"].label == "finetune entire network"
    assert example.parse_strategies("direct, softmax+arnn") == ["direct", "softmax+arnn"]
    assert example.parse_strategies(None) is None           # no option: the six
    assert example.build_parser().parse_args([]).strategies is None


def test_rst_tables(example):
    rows = [TableRow("C3-A1/CZ-A1", "all", STRATEGIES["all"].label, accuracy=0.8123,
                     kappa=0.61249, macro_f1=0.5, macro_sensitivity=0.25, macro_specificity=1.0,
                     n_epochs=307, n_folds=7)]
    text = example.pooled_table_rst(rows)
    assert text.splitlines()[:3] == [".. list-table::", "   :header-rows: 1", ""]
    assert ("   * - finetune entire network\n     - 81.2\n     - 0.612\n     - 50.0\n"
            "     - 25.0\n     - 100.0\n     - 307\n") in text
    per_fold = [{"strategy": s, "test_subject": e, "n_epochs": n, "accuracy": a, "kappa": k}
                for s, e, n, a, k in [("direct", "excerpt10", 5, 0.4, 0.1),
                                      ("direct", "excerpt2", 4, 0.75, -0.2),
                                      ("all", "excerpt2", 4, 1.0, 1.0),
                                      ("all", "excerpt10", 5, 0.6, 0.3)]]
    labels = {"all": "finetune entire network", "direct": "direct transfer"}
    acc = example.per_excerpt_table_rst(per_fold, labels, "accuracy")
    # excerpts in natural order (2 before 10), rows in the order of labels
    assert acc.endswith("   * - System\n     - excerpt2 (4)\n     - excerpt10 (5)\n"
                        "   * - finetune entire network\n     - 100.0\n     - 60.0\n"
                        "   * - direct transfer\n     - 75.0\n     - 40.0\n")
    kappa = example.per_excerpt_table_rst(per_fold, labels, "kappa")
    assert "   * - direct transfer\n     - -0.200\n     - 0.100\n" in kappa


@pytest.mark.slow
def test_direct_transfer_study_on_the_real_excerpts(example, shared_dir, tmp_path, capsys):
    """The example's direct-transfer row, run end to end on the real DREAMS excerpts, equals an
    independent computation: per excerpt, spectrograms standardised with the fold's 5
    training excerpts (the 6 others minus the fold's validation excerpt, REFERENCE §2), the
    checkpoint loaded by ``load_phan2019_model`` and the written-out stride-1 fusion of
    test_pretrained_dreams (REFERENCE §5)."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score
    from test_pretrained_dreams import _fused_predictions

    from skseqsleep import SpectrogramTransformer
    from skseqsleep.datasets import load_dreams
    from skseqsleep.model_selection import GroupHoldout
    from skseqsleep.pretrained import load_phan2019_model
    from skseqsleep.study import fold_seed

    out, rst = tmp_path / "out", tmp_path / "tables.rst"
    result = example.main(["--shared", str(shared_dir), "--strategies", "direct",
                           "--output-dir", str(out), "--rst", str(rst), "--no-plots", "-q"])
    data = load_dreams(shared_dir / "data" / "dreams")
    net = load_phan2019_model(shared_dir / example.CHECKPOINT_SUBPATH)
    excerpts = [f"excerpt{i}" for i in (1, 2, 4, 5, 6, 7, 8)]  # excerpt 3 is at 50 Hz
    y_true, y_pred, validation = [], [], {}
    for fold, rec in enumerate(excerpts, 1):
        test = data.recordings == rec
        # the fold's validation excerpt: one of the 6 others, drawn with the fold's seed
        others = data.groups[~test]
        _, valid = next(GroupHoldout(1, random_state=fold_seed(0, fold)).split(
            others, groups=others))
        validation[rec] = others[valid][0]
        train = np.flatnonzero(~test)[np.setdiff1d(np.arange(len(others)), valid)]
        transformer = SpectrogramTransformer(fs=100).fit(data.X[train])
        y_pred.append(_fused_predictions(net, transformer.transform(data.X[test]),
                                         data.recordings[test]))
        y_true.append(data.y[test])
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    # as docs/dreams_study.rst lists them (test -> validation)
    assert validation == {f"excerpt{t}": f"excerpt{v}" for t, v in
                          [(1, 2), (2, 1), (4, 6), (5, 2), (6, 2), (7, 1), (8, 4)]}
    pooled = result.predictions[("C3-A1/CZ-A1", "direct")]
    assert list(dict.fromkeys(pooled["recordings"])) == excerpts
    np.testing.assert_array_equal(pooled["y_true"], y_true)
    np.testing.assert_array_equal(pooled["y_pred"], y_pred)
    row = result.row("C3-A1/CZ-A1", "direct")
    assert (row.n_epochs, row.n_folds) == (307, 7)
    assert row.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert row.kappa == pytest.approx(cohen_kappa_score(y_true, y_pred))
    # the RST file carries the same pooled row and one column per test excerpt
    text = rst.read_text()
    assert (f"   * - direct transfer\n     - {100 * accuracy_score(y_true, y_pred):.1f}\n"
            f"     - {cohen_kappa_score(y_true, y_pred):.3f}\n") in text
    assert "     - excerpt8 (53)\n" in text and "excerpt3" not in text
    assert "direct transfer" in capsys.readouterr().out


def test_study_hypnogram_draws_excluded_epochs_as_gaps(shared_dir):
    """The study's hypnogram figure places each epoch at its time in the excerpt: excerpt 6
    keeps 34 of its 60 epochs, and the 26 excluded ones are gaps, not joined neighbours."""
    import matplotlib

    matplotlib.use("Agg")
    from test_dreams import _expected_epochs

    from skseqsleep.datasets import load_dreams
    from skseqsleep.study import _hypnogram_figure

    folder = shared_dir / "data" / "dreams"
    data = load_dreams(folder, excerpts=[5, 6])
    labels, _, kept = _expected_epochs(folder, 6)
    rec = "excerpt6"
    predictions = {("EEG", "direct"): {"y_true": data.y, "y_pred": data.y,
                                       "recordings": data.recordings}}
    fig = _hypnogram_figure(predictions, "EEG", ["direct"], rec, data)
    (ax,) = fig.axes
    x = np.asarray(ax.lines[0].get_xdata(), dtype=float) * 3600
    # expected by hand from the hypnogram file: runs of consecutive kept 30-s slots, each
    # drawn from its first start to its last end, with a break (NaN) between runs
    runs = np.split(np.array(kept), np.flatnonzero(np.diff(kept) > 1) + 1)
    expected = []
    for k, run in enumerate(runs):
        expected += ([np.nan] if k else []) + list(run * 30.0)
        expected.append((run[-1] + 1) * 30.0)
    assert len(runs) > 1 and len(labels) == 34
    np.testing.assert_allclose(x, expected)
    # the excerpt's own clock: from its first kept epoch (not 0 s here) to its last one's end
    assert kept[0] > 0
    np.testing.assert_allclose(np.array(ax.get_xlim()) * 3600,
                               [kept[0] * 30.0, (kept[-1] + 1) * 30.0])
    # a target without onsets (or other epochs than the plotted ones) draws them consecutively
    fig = _hypnogram_figure(predictions, "EEG", ["direct"], rec, None)
    assert not np.isnan(np.asarray(fig.axes[0].lines[0].get_xdata(), dtype=float)).any()
