"""A hand-written training loop over compile(model) against the trainer's (run by hand).

Issue 14 asks that a loop a user writes (examples/04's style: a DataLoader, the
model, SGD, a schedule, the six lines of a step) run at the trainer's speed,
within 5 %. Variants, each in its own process, in interleaved rounds:

  trainer       Trainer(TrainConfig(...)).fit(): the trainer's loop and step
  loop          examples/04's loop over ``fast = minitorch_cnn.compile(model)``
  loop-nograd   the same over ``compile(model, input_grad=False)``, as the trainer calls it
  loop-plain    examples/04's loop as it is, over the plain teaching layers

All on the same synthetic images (``data.synthetic``, 32x32), with random crop,
flip and normalisation, the same model initialisation, SGD with Nesterov
momentum and weight decay and a one-cycle schedule. The time of a step is the
time between the ends of consecutive steps (data loading included); each
process warms up, then times ``--steps`` steps; medians per process, then the
median over rounds of each variant's ratio to the trainer in the same round.

    python3 benchmarks/bench_loop.py                          # seed model, batch 100
    python3 benchmarks/bench_loop.py --model fastnet --batch 512 --steps 6
    python3 benchmarks/bench_loop.py --smoke                  # batch 2, one step: that it runs
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from harness import header, median, paired_ratio, round_order, sgemm_gflops  # noqa: E402

VARIANTS = ("trainer", "loop", "loop-nograd", "loop-plain")


def worker(args):
    """Run one variant for warm-up + timed steps; print the timed steps' durations as JSON."""
    sys.path.insert(0, ROOT)
    import numpy as np

    import minitorch_cnn
    from minitorch_cnn import data, models, nn, optim
    from minitorch_cnn.training import TrainConfig, Trainer
    n_steps, ends = args.warmup + args.steps, []
    n_images = args.batch * (n_steps + 1)
    if args.variant == "trainer":
        with tempfile.TemporaryDirectory() as out:
            cfg = TrainConfig(model=args.model, data="synthetic", synthetic_size=n_images,
                              batch_size=args.batch, optimizer="sgd", lr=0.05, momentum=0.9,
                              weight_decay=5e-4, augment=True, epochs=1, max_steps=n_steps,
                              checkpoint_every=0, out=out, progress=False, log_every=10 ** 6)
            trainer = Trainer(cfg, log=lambda *a, **k: None)
            ends.append(time.perf_counter())
            trainer.fit(on_step=lambda t: ends.append(time.perf_counter()))
    else:
        train_set = data.synthetic(train=True, n=n_images, seed=0)
        pixels = train_set.images.reshape(-1, 3) / 255.0
        normalize = data.Normalize(pixels.mean(axis=0), pixels.std(axis=0))
        augment = data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(),
                                normalize])
        loader = data.DataLoader(train_set, args.batch, shuffle=True, seed=0,
                                 transform=augment, drop_last=True)
        model = models.get_model(args.model, num_classes=10, rng=np.random.default_rng(0))
        net = {"loop": lambda: minitorch_cnn.compile(model),
               "loop-nograd": lambda: minitorch_cnn.compile(model, input_grad=False),
               "loop-plain": lambda: model}[args.variant]()
        criterion = nn.CrossEntropyLoss()
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
        schedule = optim.make_scheduler("onecycle", optimizer, len(loader))
        model.train()
        ends.append(time.perf_counter())
        for x, y in loader.iter_epoch(0):
            criterion(net(x), y)
            net.backward(criterion.backward())
            optimizer.step()
            schedule.step()
            model.zero_grad()
            ends.append(time.perf_counter())
            if len(ends) > n_steps:
                break
    steps = [b - a for a, b in zip(ends, ends[1:])][args.warmup:n_steps]
    print(json.dumps({"variant": args.variant, "steps": steps}))


def run(args, variant):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--model", args.model,
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{variant} failed:\n{out.stderr}")
    return median(json.loads(out.stdout.strip().splitlines()[-1])["steps"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet50_layer4")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=12, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (the first traces)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--smoke", action="store_true",
                   help="batch 2, 1 timed step after 1, 1 round: that it runs")
    p.add_argument("--worker", choices=VARIANTS, dest="variant", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.variant:
        return worker(args)
    if args.smoke:
        args.batch, args.steps, args.warmup, args.rounds = 2, 1, 1, 1
    header(f"bench_loop: a hand-written loop against the trainer's, {args.model}",
           f"batch {args.batch}, {args.steps} timed steps after {args.warmup} per process, "
           f"{args.rounds} rounds")
    gemm = [sgemm_gflops()]
    times = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for v in round_order(VARIANTS, r):
            times[v].append(run(args, v))
        gemm.append(sgemm_gflops())
        print(f"round {r + 1}: " + "  ".join(f"{v} {times[v][-1] * 1e3:.0f} ms" for v in VARIANTS),
              flush=True)
    print(f"{'variant':<12} {'ms/step (median of rounds)':>28} {'/ trainer (paired, median)':>28}")
    for v in VARIANTS:
        ratio, _ = paired_ratio(times[v], times["trainer"])
        print(f"{v:<12} {median(times[v]) * 1e3:>28.1f} {ratio:>28.3f}")
    print(f"numpy float32 GEMM 400x1024x1024: {median(gemm):.0f} GFLOP/s median "
          f"({min(gemm):.0f}-{max(gemm):.0f} over the run)")


if __name__ == "__main__":
    main()
