// Train: the float32 trainer. See TrainableUNet (graph walk), Layers (forward/backward per layer),
// Adam, Strategy (the paper's fine-tuning presets), Initialization and TrainingRun (the `train` command).
