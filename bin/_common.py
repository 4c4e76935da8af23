"""What every nnetavg command shares: Kaldi-style booleans, ``--config``, ``--verbose``,
``--use-gpu``, logging of the command line, options generated from dataclasses, and one-line
errors.

* Booleans accept ``true/false`` (also ``yes/no``, ``1/0``) as Kaldi's: ``--binary=false``.
* ``--config FILE``: lines of ``--name=value`` (``#`` comments) inserted before the command-line
  arguments, so the command line wins.
* Kaldi's spellings are accepted: ``--option_name`` for ``--option-name``, a bare ``--binary``
  for ``--binary=true``, ``--print-args=false`` (no echo of the command line).
* An :class:`NnetavgError` is printed as ``ERROR (prog ...) message`` and the exit status is 1;
  so are usage errors (an unknown option, a bad value, missing arguments), as Kaldi's
  ``ParseOptions`` does, with the usage line after them.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys

import click

from nnetavg import backend
from nnetavg import log as nlog
from nnetavg.errors import NnetavgError

log = logging.getLogger("nnetavg.bin")


class KaldiBool(click.ParamType):
    name = "true|false"
    _TRUE = {"true", "t", "yes", "y", "1"}
    _FALSE = {"false", "f", "no", "n", "0"}

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        v = str(value).strip().lower()
        if v in self._TRUE:
            return True
        if v in self._FALSE:
            return False
        self.fail(f"{value!r} is not a boolean (use true or false)", param, ctx)


KALDI_BOOL = KaldiBool()


def _expand_config(args: list[str]) -> list[str]:
    out: list[str] = []
    configs: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--config="):
            configs.append(a.split("=", 1)[1])
        elif a == "--config" and i + 1 < len(args):
            configs.append(args[i + 1])
            i += 1
        else:
            out.append(a)
        i += 1
    from_files: list[str] = []
    for path in configs:
        try:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    line = line.split("#", 1)[0].strip()
                    if not line:
                        continue
                    if not line.startswith("--"):
                        raise click.UsageError(f"{path}:{lineno}: expected --name=value, found {line!r}")
                    from_files.append(line)
        except OSError as exc:
            raise click.UsageError(f"cannot read --config file {path}: {exc.strerror}") from None
    return from_files + out


def _kaldi_spellings(args: list[str], bool_options: set[str]) -> tuple[list[str], bool]:
    """``--a_b=x`` -> ``--a-b=x``; bare ``--flag`` of a boolean option -> ``--flag=true``;
    ``--print-args=B`` removed (returned). Stops at ``--``."""
    out, print_args = [], True
    for i, a in enumerate(args):
        if a == "--":
            out.extend(args[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, value = a[2:].partition("=")
            name = name.replace("_", "-")
            if name == "print-args":
                print_args = KALDI_BOOL.convert(value or "true", None, None)
                continue
            if not eq and name in bool_options:
                a = f"--{name}=true"
            else:
                a = f"--{name}{eq}{value}"
        out.append(a)
    return out, print_args


class KaldiCommand(click.Command):
    kaldi_prefix = False   # log with Kaldi's own prefix (the commands named after Kaldi binaries)
    tune_malloc = False    # keep freed buffers in the heap (nnetavg.allocator): training and forward commands
    kaldi_gpu = False      # --use-gpu=yes without CuPy installed: the CPU, as a Kaldi build without CUDA

    def parse_args(self, ctx, args):
        bools = {o.lstrip("-") for p in self.params if isinstance(p, click.Option) and p.type is KALDI_BOOL
                 for o in p.opts}
        args, self._print_args = _kaldi_spellings(_expand_config(list(args)), bools)
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, **extra):
        """Click's main, but usage errors are reported Kaldi's way (ERROR line, exit 1)."""
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.ClickException as exc:
            name = prog_name or (sys.argv[0].rsplit("/", 1)[-1] if sys.argv else self.name)
            nlog.setup(name, 0, kaldi_prefix=self.kaldi_prefix)
            log.error("%s", exc.format_message())
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                print(ctx.get_usage() + f"\nTry '{ctx.command_path} --help' for the options.", file=sys.stderr)
            sys.exit(1)
        except click.exceptions.Abort:
            print("Aborted!", file=sys.stderr)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        params = ctx.params
        nlog.setup(ctx.info_name or self.name, int(params.get("verbose", 0) or 0), kaldi_prefix=self.kaldi_prefix)
        if getattr(self, "_print_args", True):
            print(" ".join(shlex.quote(a) for a in [ctx.info_name or self.name] + sys.argv[1:]), file=sys.stderr,
                  flush=True)
        try:
            if "use_gpu" in params:
                backend.select_device(params["use_gpu"], kaldi_cpu_build=self.kaldi_gpu)
            if self.tune_malloc:
                from nnetavg.allocator import keep_freed_memory  # noqa: PLC0415
                keep_freed_memory(announce=True)
            return super().invoke(ctx)
        except NnetavgError as exc:
            log.error("%s", exc)
            ctx.exit(1)

    def format_help_text(self, ctx, formatter):
        # The docstring verbatim: Usage / e.g. lines must not be re-wrapped.
        import inspect  # noqa: PLC0415
        text = inspect.cleandoc(self.help or "")
        formatter.write("\n")
        for line in text.splitlines():
            formatter.write("\n" if line.strip() == "\b" else ("  " + line).rstrip() + "\n")


def kaldi_command(fn=None, kaldi_prefix: bool = False, kaldi_gpu: bool | None = None, tune_malloc: bool = False,
                  **kwargs):
    """``@kaldi_command`` declares a command with ``--config`` and ``--verbose``;
    ``kaldi_prefix=True`` for a command named after a Kaldi binary (its log lines carry Kaldi's
    prefix, so Kaldi's scripts parse them); ``kaldi_gpu`` (default: ``kaldi_prefix``): Kaldi's
    ``--use-gpu`` semantics, see :func:`nnetavg.backend.select_device`; ``tune_malloc``: the
    command sets malloc to keep freed buffers (:mod:`nnetavg.allocator`), once, logged."""
    def deco(f):
        f = click.option("--verbose", type=int, default=0, show_default=True, help="Verbose level (1 = debug)")(f)
        f = click.option("--config", type=str, default=None, expose_value=False,
                         help="File of --name=value lines read before the command line")(f)
        cls = type("KaldiCommand", (KaldiCommand,), {"kaldi_prefix": kaldi_prefix, "tune_malloc": tune_malloc,
                                                     "kaldi_gpu": kaldi_prefix if kaldi_gpu is None else kaldi_gpu})
        return click.command(cls=cls, context_settings={"help_option_names": ["-h", "--help"],
                                                        "max_content_width": 110}, **kwargs)(f)
    return deco(fn) if fn is not None else deco


def kaldi_binary(command: click.Command, name: str, help_text: str = "") -> click.Command:
    """The same command under Kaldi's binary ``name``: Kaldi's log prefix and ``--use-gpu``
    semantics (e.g. rbm-train-cd1 as rbm-train-cd1-frmshuff)."""
    import copy  # noqa: PLC0415
    new = copy.copy(command)
    new.__class__ = type("KaldiCommand", (command.__class__,), {"kaldi_prefix": True, "kaldi_gpu": True})
    new.name = name
    if help_text:
        new.help = help_text
    return new


def use_gpu_option(f=None, default: str = "no"):
    """``--use-gpu`` (``@use_gpu_option`` or ``@use_gpu_option(default="yes")``, Kaldi's default)."""
    def deco(g):
        return click.option("--use-gpu", type=click.Choice(backend.USE_GPU_CHOICES), default=default, show_default=True,
                            help="yes: CuPy on a GPU (error if none); optional: GPU if usable; no: numpy")(g)
    return deco(f) if f is not None else deco


def binary_option(f):
    return click.option("--binary", type=KALDI_BOOL, default=True, show_default=True,
                        help="Write in binary mode (false: text)")(f)


def feature_transform_option(help_text: str = "nnet1 network applied to each utterance first"):
    """``--feature-transform`` (declared once for every command that takes it)."""
    return click.option("--feature-transform", type=str, default="", help=help_text)


def length_tolerance_option(f):
    from nnetavg.data.utterances import LENGTH_TOLERANCE  # noqa: PLC0415
    return click.option("--length-tolerance", type=int, default=LENGTH_TOLERANCE, show_default=True,
                        help="Frames of feature/alignment length difference tolerated (the longer is truncated); "
                             "more is skipped")(f)


def dataclass_options(cls):
    """Click options for every field of the dataclass ``cls`` (defaults and help declared once,
    in the dataclass); the command receives them as ordinary keyword arguments."""
    def deco(f):
        for field in reversed(dataclasses.fields(cls)):
            name = "--" + field.name.replace("_", "-")
            typ = KALDI_BOOL if field.type in (bool, "bool") else None
            f = click.option(name, field.name, type=typ if typ else type(field.default), default=field.default,
                             show_default=True, help=field.metadata.get("help", ""))(f)
        return f
    return deco


def pick(cls, kwargs: dict):
    """Builds ``cls`` from (and removes) its fields in ``kwargs``."""
    return cls(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls)})


def fail(message: str) -> None:
    raise NnetavgError(message)


def cv_figures(nnet, feats_rspecifier: str, ali_rspecifier: str, feature_transform: str,
               length_tolerance: int) -> tuple[str, str]:
    """nnet-compute-prob's evaluation of ``nnet`` (already on its device): the line
    ``cross-entropy=... frame-accuracy=... frames=...`` and the data summary; no usable frame is
    an error naming the table. Shared by nnet-compute-prob and nnet-average --cv-*."""
    from nnetavg.data.utterances import DataStats  # noqa: PLC0415  (only the commands that evaluate)
    from nnetavg.io.nnet1 import read_nnet  # noqa: PLC0415
    from nnetavg.train.trainer import evaluate  # noqa: PLC0415
    transform = read_nnet(feature_transform) if feature_transform else None
    data = DataStats()
    stats = evaluate(nnet, feats_rspecifier, ali_rspecifier, transform, data, length_tolerance=length_tolerance)
    if stats.frames == 0:
        fail(f"no usable frames in {feats_rspecifier}")
    return (nlog.kv(cross_entropy=stats.cross_entropy, frame_accuracy=stats.frame_accuracy, frames=stats.frames),
            data.summary())
