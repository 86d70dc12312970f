"""The command line: entry points, argument parsing, and clear errors (exit status 2)."""

import configparser
import subprocess
import sys

import pytest
from conftest import ROOT

from skseqsleep.cli import build_parser, main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "skseqsleep", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=120, check=False)


def test_console_script_is_declared_for_cli_main():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = cfg["options.entry_points"]["console_scripts"]
    assert "skseqsleep = skseqsleep.cli:main" in scripts


def test_python_m_help_lists_the_study_command():
    out = _run("--help")
    assert out.returncode == 0
    assert "study" in out.stdout
    out = _run("study", "--help")
    assert out.returncode == 0
    for opt in ("--source", "--target", "--channel", "--output-dir", "--n-jobs",
                "--scheduler", "--plot-recording", "--quiet", "--fetch", "--max-epochs"):
        assert opt in out.stdout


def test_no_command_is_a_usage_error():
    out = _run()
    assert out.returncode == 2
    assert "required: COMMAND" in out.stderr or "the following arguments are required" \
        in out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "edf:/x"], ("unknown --target 'edf:/x': expected one of simulated, "
                              "sleep-edf:PATH, dreams:PATH")),
    (["--source", "mass"], "--source mass needs a path"),
    (["--target", "sleep-edf:/no/such/sleep-edf"],
     "the target path /no/such/sleep-edf does not exist (add --fetch"),
    (["--target", "dreams:/no/such/dreams"], "the target path /no/such/dreams does not exist"),
    (["--source", "mass:/no/such/mass"], "the source path /no/such/mass does not exist"),
    (["--channel", "EEG Fpz-Cz"], ("unknown channel 'EEG Fpz-Cz' for the simulated target; "
                                 "it has 'Fpz-Cz-like', 'EOG-like'")),
    (["--strategies", "softmax,everything"], "unknown strategies ['everything']"),
    (["--subjects", "0-3"], "subjects only applies to a sleep-edf target"),
    (["--fetch-url", "http://mirror"], "fetch_url (--fetch-url) is only used with fetch"),
    (["--scheduler", "notanaddress"], ("--scheduler 'notanaddress' is not a Dask scheduler "
                                       "address (expected e.g. tcp://10.0.0.1:8786)")),
    (["--source", "checkpoint:/no/such/x.ckpt"], "cannot read the TensorFlow checkpoint"),
    (["--cell", "foo"], "cell must be one of ('gru', 'lstm', 'bnlstm'), got 'foo'"),
    (["--set", "foo=1"], "unknown classifier parameter in --set"),
    (["--pretrain-max-epochs", "20", "--set", "max_epochs=1"],
     ("--set max_epochs: use --max-epochs (finetuning) and --pretrain-max-epochs (the source "
      "model)")),
    (["--lr", "0.01", "--set", "lr=0.1"], "--set lr: use --lr. The study sets this parameter"),
    (["--random-state", "-1"], "random_state (--random-state) must be an integer >= 0"),
    (["--set", "optimizer=sgd"], "must be a class such as torch.optim.SGD; got 'sgd'"),
    (["--set", "device='cuda:99'"], "device='cuda:99' asks for CUDA"),
    (["--sim-target-subjects", "2"], "needs at least 3 subjects; the target has 2"),
    (["--sim-epochs", "3"], ("fold 1 (test subject sim-s00) cannot be trained: no training "
                             "window")),
])
def test_bad_study_arguments_exit_2_with_a_message(tmp_path, capsys, args, message):
    code = main(["study", "--output-dir", str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("skseqsleep study: error: ")
    assert message in err
    assert not (tmp_path / "out").exists()  # nothing written for a rejected command


def test_a_bad_argument_in_a_real_process_gives_status_2_and_no_traceback(tmp_path):
    out = _run("study", "--output-dir", str(tmp_path / "out"),
               "--target", "sleep-edf:/no/such/sleep-edf")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == ("skseqsleep study: error: the target path "
                                  "/no/such/sleep-edf does not exist (add --fetch to "
                                  "download Sleep-EDF there)")


@pytest.mark.parametrize(("args", "message"), [
    (["--n-jobs", "0"], "--n-jobs 0 runs nothing"),
    (["--max-epochs", "-1"], "expected a positive integer, got '-1'"),
    (["--lr", "abc"], "expected a positive number, got 'abc'"),
    (["--subjects", "5-2"], "expected subject numbers like '0-19'"),
    # refused before the range is built (0-30000000 built a 3-GB list first)
    (["--subjects", "0-30000000"], "subject 30000000 is beyond the Sleep-EDF numbering (0-82)"),
    (["--subjects", "0,1,99"], "subject 99 is beyond the Sleep-EDF numbering (0-82)"),
    (["--set", "no_equals_sign"], "expected PARAM=VALUE"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_argparse_errors_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["study", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_parsing_of_lists_and_classifier_parameters():
    args = build_parser().parse_args([
        "study", "--channel", "EEG Fpz-Cz", "--channel", "EOG horizontal",
        "--subjects", "0-2,7", "--set", "module__rnn_hidden=16", "--set", "device=cpu",
        "--set", "trainable_parts=('softmax',)", "--n-jobs", "-1"])
    assert args.channels == ["EEG Fpz-Cz", "EOG horizontal"]
    assert args.subjects == [0, 1, 2, 7]
    assert dict(args.classifier_params) == {"module__rnn_hidden": 16, "device": "cpu",
                                            "trainable_parts": ("softmax",)}
    assert args.n_jobs == -1
    defaults = build_parser().parse_args(["study"])
    assert defaults.output_dir == "study_results"
    assert defaults.source == "simulated" and defaults.target == "simulated"
    assert defaults.channels is None and defaults.quiet is False


def test_setting_options_reach_run_study_under_the_setting_names(monkeypatch, capsys):
    from skseqsleep import study

    seen = {}

    def fake_run_study(output_dir, **kwargs):
        seen.update(kwargs["settings"])
        return study.StudyResult(rows=[])

    monkeypatch.setattr(study, "run_study", fake_run_study)
    options = {"max-epochs": 2, "pretrain-max-epochs": 3, "validate-every": 4, "patience": 5,
               "batch-size": 6, "lr": 0.5, "seq-len": 7, "n-valid-subjects": 8,
               "n-filters": 9, "rnn-hidden": 10, "attention-size": 11, "cell": "lstm",
               "sim-source-subjects": 12, "sim-target-subjects": 13, "sim-nights": 14,
               "sim-epochs": 15}
    argv = [a for name, value in options.items() for a in (f"--{name}", str(value))]
    assert main(["study", *argv]) == 0
    expected = {name.replace("-", "_"): value for name, value in options.items()}
    expected["sim_epochs_per_night"] = expected.pop("sim_epochs")
    assert seen == expected and set(seen) == set(study.SIMULATED_SETTINGS)
    # options not given are left out (the study's defaults apply)
    seen.clear()
    assert main(["study", "--max-epochs", "2"]) == 0
    assert seen == {"max_epochs": 2}
    capsys.readouterr()


def test_cli_import_does_not_import_torch():
    code = "import sys, skseqsleep.cli, skseqsleep.study; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_unknown_channel_of_real_dreams_data_exits_2(shared_dir, tmp_path, capsys):
    code = main(["study", "--target", f"dreams:{shared_dir / 'data' / 'dreams'}",
                 "--channel", "EOG horizontal", "--output-dir", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown channel 'EOG horizontal' for the dreams target" in err
    assert "'C3-A1/CZ-A1'" in err  # the channels the excerpts do have (C3-A1 and Cz-A1)
    assert not (tmp_path / "o").exists()


def test_fetch_from_a_local_mirror_checks_sha256_and_errors_cleanly(shared_dir, tmp_path,
                                                                    capsys):
    # a real HTTP server on 127.0.0.1 serving a Sleep-EDF-like mirror: the official
    # hypnogram of SC4001 (its SHA-256 is the official one) and a PSG file whose content is
    # wrong, so the download must stop with a checksum error (exit 2, no traceback)
    import functools
    import http.server
    import shutil
    import threading

    mirror = tmp_path / "mirror" / "sleep-cassette"
    mirror.mkdir(parents=True)
    shutil.copy(shared_dir / "data" / "sleep-edf" / "SC4001EC-Hypnogram.edf", mirror)
    (mirror / "SC4001E0-PSG.edf").write_bytes(b"not the real recording")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path / "mirror"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = main(["study", "--target", f"sleep-edf:{tmp_path / 'data'}", "--fetch",
                     "--fetch-url", f"http://127.0.0.1:{server.server_port}",
                     "--subjects", "0", "--output-dir", str(tmp_path / "out"), "-q"])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"skseqsleep study: error: cannot download Sleep-EDF into "
                          f"{tmp_path / 'data'}")
    assert "SC4001E0-PSG.edf" in err and ("checksum" in err or "SHA-256" in err)
    assert not (tmp_path / "data" / "sleep-cassette" / "SC4001E0-PSG.edf").exists()
    assert not (tmp_path / "out").exists()


def test_a_typo_fixed_reruns_in_the_same_output_folder(tmp_path, capsys):
    # the rejected command claims nothing, so the corrected one may use the same folder
    from test_study import TINY_CLI

    out = str(tmp_path / "out")
    common = ["study", "--output-dir", out, "--quiet", "--no-plots", "--strategies", "direct",
              *TINY_CLI]
    assert main([*common, "--cell", "gruu"]) == 2
    assert "cell must be one of" in capsys.readouterr().err
    assert main([*common, "--cell", "gru"]) == 0
    assert "direct transfer" in capsys.readouterr().out
