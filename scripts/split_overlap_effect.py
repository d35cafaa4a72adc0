#!/usr/bin/env python3
"""How much does the paper split flatter a model? Splits the per-frame results of an `evaluation.json`
(sonoquant evaluate / train) into test frames whose fetus also has a frame in the training split and the
rest, and prints mean Dice and HC error for each group. Fetus = the number before the first '_' of the
file name (HC18 names repeated acquisitions of one fetus 010_HC.png, 010_2HC.png, ...). Standard library only.

    python3 scripts/split_overlap_effect.py SPLIT.csv evaluation.json [evaluation.json ...]
"""
import csv, json, sys


def fetus(name):
    # The same rule as HC18.patientID(ofFrame:) (Sources/HC18/Dataset.swift), which the harness and
    # `sonoquant split` use: keep the two in step.
    return name.split("/")[-1].split("_")[0]


def main():
    split_path, reports = sys.argv[1], sys.argv[2:]
    with open(split_path) as f:
        rows = list(csv.DictReader(f))
    train_fetuses = {fetus(r["filename"]) for r in rows if r["split"] == "train"}
    for path in reports:
        with open(path) as f:
            report = json.load(f)
        groups = {"fetus also in training": [], "fetus unseen": []}
        for row in report["rows"]:
            key = "fetus also in training" if fetus(row["name"]) in train_fetuses else "fetus unseen"
            groups[key].append(row)
        print(path)
        for key, members in groups.items():
            if not members:
                continue
            n = len(members)
            dice = sum(m["dice"] for m in members) / n
            # Standard error of the group mean: the scale against which a difference between groups is read.
            dice_se = (sum((m["dice"] - dice) ** 2 for m in members) / (n - 1) / n) ** 0.5
            hc = sum(m["hcErrorMM"] for m in members) / n
            print(f"  {key:24s} {n:4d} frames  Dice {dice:.4f} (s.e. {dice_se:.4f})  HC error {hc:.2f} mm")


if __name__ == "__main__":
    main()
