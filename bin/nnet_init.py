"""Initialise a network from a Kaldi <NnetProto> prototype, or from a few options.

\b
Usage:  nnet-init [options] PROTO MODEL_OUT
        nnet-init [options] --input-dim D --output-dim C [--hidden-layers L --hidden-dim H] MODEL_OUT
e.g.:   nnet-init --seed=777 nnet.proto 0.nnet
        nnet-init --input-dim=440 --output-dim=48 --hidden-layers=3 --hidden-dim=512 0.nnet
        nnet-init --dbn=exp/dbn/6.dbn --hidden-layers=0 --output-dim=48 0.nnet
\b
The prototype written by the options follows utils/nnet/make_nnet_proto.py (sigmoid hidden
layers, Glorot-scaled weights, a softmax output); --write-proto saves it. With --dbn the new
layers go on top of a pretrained DBN (usually --hidden-layers=0: only the softmax layer is new).
"""

import logging

import click

from nnetavg.bin._common import binary_option, fail, kaldi_binary, kaldi_command
from nnetavg.io.kaldi_basic import read_rxfilename
from nnetavg.io.nnet1 import read_nnet, write_nnet
from nnetavg.nnet.network import Network
from nnetavg.nnet.proto import NONLINEARITIES, init_from_proto, make_proto

log = logging.getLogger("nnetavg.bin")


@kaldi_command(help=__doc__)
@binary_option
@click.option("--seed", type=int, default=777, show_default=True, help="Seed of the random initialisation")
@click.option("--input-dim", type=int, default=0, help="Without PROTO: network input dim (after the feature transform)")
@click.option("--output-dim", type=int, default=0, help="Without PROTO: number of outputs (pdfs)")
@click.option("--hidden-layers", type=int, default=2, show_default=True, help="Without PROTO: hidden layers (0: linear model)")
@click.option("--hidden-dim", type=int, default=1024, show_default=True, help="Without PROTO: units per hidden layer")
@click.option("--nonlinearity", type=click.Choice(list(NONLINEARITIES)), default="sigmoid", show_default=True)
@click.option("--write-proto", type=str, default="", help="Also save the prototype to this file")
@click.option("--dbn", type=str, default="", help="Put the new layers on top of this (pretrained) network")
@click.argument("args", nargs=-1, metavar="[PROTO] MODEL_OUT")
def main(binary, seed, input_dim, output_dim, hidden_layers, hidden_dim, nonlinearity, write_proto, dbn, args,
         verbose):
    base = read_nnet(dbn) if dbn else None
    if base is not None:
        if len(args) != 1 or output_dim <= 0:
            fail("with --dbn give --output-dim and MODEL_OUT (no PROTO)")
        if input_dim and input_dim != base.output_dim:
            fail(f"--input-dim={input_dim} but {dbn} outputs dim {base.output_dim}")
        input_dim = base.output_dim
    if len(args) == 2:
        if input_dim or output_dim:
            fail("give either PROTO or --input-dim/--output-dim, not both")
        proto_name, model_out = args
        text = read_rxfilename(proto_name).decode(errors="replace")
    elif len(args) == 1:
        if input_dim <= 0 or output_dim <= 0:
            fail("without PROTO, --input-dim and --output-dim are required")
        proto_name, model_out = "<options>", args[0]
        text = make_proto(input_dim, output_dim, hidden_layers, hidden_dim, nonlinearity,
                          smaller_input_weights=base is None)
    else:
        raise click.UsageError("expected [PROTO] MODEL_OUT")
    if write_proto:
        with open(write_proto, "w", encoding="utf-8") as f:
            f.write(text)
    comps = init_from_proto(text, seed=seed, name=proto_name)
    nnet = Network((base._detached_components() if base is not None else []) + comps)
    write_nnet(nnet, model_out, binary=binary)
    log.info("wrote %s: %d components, %d parameters, %d -> %d", model_out, len(nnet.components),
             nnet.num_params, nnet.input_dim, nnet.output_dim)


kaldi_main = kaldi_binary(main, "nnet-initialize", """Kaldi's nnet-initialize: a network from an <NnetProto> prototype
(this is nnet-init with Kaldi's log prefix).

\b
Usage:  nnet-initialize [options] PROTO MODEL_OUT
e.g.:   nnet-initialize --binary=false nnet.proto nnet.init
""")
