#!/usr/bin/env python3
"""Write a synthetic Kaldi data directory and pdf alignments with the structure of speech.

Usage:  local/make_synth_data.py [--preset tiny|default|large] [--seed N] OUT_DIR
e.g.:   local/make_synth_data.py --preset default data

Writes OUT_DIR/train/{feats.ark,feats.scp,utt2spk,spk2utt,text} and OUT_DIR/ali/{pdf.ark,num_pdfs}.

The generative model, chosen so that context helps, a DNN beats a linear model, and frame
accuracy ends well above chance but below 100 %:

* phones: P phones of 3 left-to-right HMM states each (pdf = 3 * phone + state); phone 0 is
  silence and starts and ends every utterance; phone sequences follow a sparse random bigram
  chain (each phone has a few likely successors);
* durations: each state lasts 1 + Poisson(lambda) frames, lambda drawn per pdf from 1.5..4.5;
* latent trajectory: z_t = a z_{t-1} + (1 - a) m_pdf(t) + noise (coarticulation: a frame carries
  the previous frames' targets, so neighbouring frames disambiguate it); targets m_p of dim 12;
* each pdf emits around one of 3 targets (picked per state segment), so its frames form several
  clusters that a linear model cannot separate from the other pdfs';
* a fixed random nonlinear warp to 40-dim "features": x = B tanh(A (s_spk * z) + c) + o_spk +
  noise, with a per-speaker latent scale s_spk (vocal-tract-like) and feature offset o_spk
  (channel-like, removed by per-speaker CMVN) and Gaussian noise, both in the latent space and
  on the features, correlated over time (AR(1), 0.6).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from nnetavg.io.tables import INT_VECTOR, MATRIX, TableWriter

PRESETS = {
    # speakers, utterances per speaker, phones (incl. silence), mean phones per utterance
    "tiny": dict(speakers=12, utts=8, phones=8, phones_per_utt=10),
    "default": dict(speakers=40, utts=40, phones=16, phones_per_utt=14),
    "large": dict(speakers=120, utts=100, phones=40, phones_per_utt=16),
    # The corpus of the scaling experiments (local/compare_scaling_big.sh): ~3.3M frames, 300
    # pdfs, a 20-dim latent space (more structure to learn than the small presets' 12 dims).
    "big": dict(speakers=240, utts=64, phones=100, phones_per_utt=16, latent_dim=20),
    # 3x "big" (~10M frames): its first 240 speakers are big's, the same generator (the one-pass
    # ASGD experiment with 3x the data of local/compare_big.sh --what asgd3x)
    "huge": dict(speakers=720, utts=64, phones=100, phones_per_utt=16, latent_dim=20),
}
FEAT_DIM, LATENT_DIM, WARP_DIM, MODES = 40, 12, 48, 3  # LATENT_DIM: the default; presets may set latent_dim


class Generator:
    def __init__(self, phones: int, seed: int, noise: float = 1.6, latent_noise: float = 0.9, smooth: float = 0.55,
                 noise_corr: float = 0.6, latent_dim: int = LATENT_DIM):
        rng = np.random.default_rng(seed)
        self.latent_dim = latent_dim
        self.phones, self.num_pdfs = phones, 3 * phones
        self.noise, self.latent_noise, self.smooth, self.noise_corr = noise, latent_noise, smooth, noise_corr
        # Each pdf is a mixture of MODES targets (speech pdfs are multi-modal: GMMs), scattered so
        # that no hyperplane separates one pdf from the rest; states of a phone share a phone mean.
        phone_means = rng.standard_normal((phones, latent_dim)) * 1.0
        self.targets = (np.repeat(phone_means, 3, axis=0)[:, None, :]
                        + 1.2 * rng.standard_normal((self.num_pdfs, MODES, latent_dim)))
        self.durations = rng.uniform(1.5, 4.5, self.num_pdfs)
        bigram = rng.random((phones, phones)) ** 6  # sparse-ish: a few likely successors
        np.fill_diagonal(bigram, 0.0)
        bigram[:, 0] *= 0.2
        self.bigram = bigram / bigram.sum(axis=1, keepdims=True)
        self.A = rng.standard_normal((WARP_DIM, latent_dim)) / np.sqrt(latent_dim) * 2.5
        self.c = rng.standard_normal(WARP_DIM) * 0.5
        self.B = rng.standard_normal((FEAT_DIM, WARP_DIM)) / np.sqrt(WARP_DIM) * 2.0

    def _ar_noise(self, rng, shape):
        """Unit-variance Gaussian noise correlated over time (AR(1)), so splicing neighbouring
        frames does not simply average it away."""
        e = rng.standard_normal(shape)
        r = self.noise_corr
        for t in range(1, shape[0]):
            e[t] = r * e[t - 1] + np.sqrt(1 - r * r) * e[t]
        return e

    def speaker(self, rng):
        return 1.0 + 0.15 * rng.standard_normal(self.latent_dim), 1.5 * rng.standard_normal(FEAT_DIM)

    def utterance(self, rng, spk, mean_phones: int):
        n = max(2, rng.poisson(mean_phones))
        seq = [0]
        for _ in range(n):
            seq.append(int(rng.choice(self.phones, p=self.bigram[seq[-1]])))
        seq.append(0)
        pdfs, goals = [], []
        for ph in seq:
            for s in range(3):
                p = 3 * ph + s
                n = 1 + rng.poisson(self.durations[p])
                pdfs.extend([p] * n)
                goals.extend([self.targets[p, rng.integers(MODES)]] * n)
        pdfs = np.asarray(pdfs, dtype=np.int32)
        z = np.empty((len(pdfs), self.latent_dim))
        prev = goals[0]
        for t, g in enumerate(goals):
            prev = self.smooth * prev + (1 - self.smooth) * g
            z[t] = prev
        z += self.latent_noise * self._ar_noise(rng, z.shape)
        scale, offset = spk
        x = np.tanh((z * scale) @ self.A.T + self.c) @ self.B.T + offset
        x += self.noise * self._ar_noise(rng, x.shape)
        words = " ".join(f"ph{ph}" for ph in seq[1:-1])
        return x.astype(np.float32), pdfs, words


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out_dir")
    a = ap.parse_args(argv)
    cfg = PRESETS[a.preset]
    gen = Generator(cfg["phones"], seed=1000 + a.seed, latent_dim=cfg.get("latent_dim", LATENT_DIM))
    rng = np.random.default_rng(a.seed)
    data, ali = os.path.join(a.out_dir, "train"), os.path.join(a.out_dir, "ali")
    os.makedirs(data, exist_ok=True)
    os.makedirs(ali, exist_ok=True)
    frames = 0
    utt2spk, spk2utt, text = [], [], []
    with TableWriter(f"ark,scp:{data}/feats.ark,{data}/feats.scp", MATRIX) as fw, \
            TableWriter(f"ark:{ali}/pdf.ark", INT_VECTOR) as aw:
        for s in range(cfg["speakers"]):
            spk = f"spk{s + 1:03d}"
            sp = gen.speaker(rng)
            utts = []
            for u in range(cfg["utts"]):
                key = f"{spk}-utt{u + 1:03d}"
                x, pdfs, words = gen.utterance(rng, sp, cfg["phones_per_utt"])
                fw.write(key, x)
                aw.write(key, pdfs)
                frames += len(pdfs)
                utts.append(key)
                utt2spk.append(f"{key} {spk}\n")
                text.append(f"{key} {words}\n")
            spk2utt.append(f"{spk} {' '.join(utts)}\n")
    for name, lines in (("utt2spk", utt2spk), ("spk2utt", spk2utt), ("text", text)):
        with open(os.path.join(data, name), "w") as f:
            f.writelines(lines)
    with open(os.path.join(ali, "num_pdfs"), "w") as f:
        f.write(f"{gen.num_pdfs}\n")
    print(f"make_synth_data.py: preset={a.preset} speakers={cfg['speakers']} utterances={len(utt2spk)} "
          f"frames={frames} feat-dim={FEAT_DIM} num-pdfs={gen.num_pdfs}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
