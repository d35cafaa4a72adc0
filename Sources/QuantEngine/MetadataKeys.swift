// Every `sonoquant.*` key SonoQuant writes into (or reads from) a safetensors header, in one place: a reader
// of any model or run file finds here what each key means and which files carry it. Values are strings (the
// safetensors `__metadata__` is a string-to-string map).

/// The `sonoquant.*` metadata keys.
public enum MetadataKey {
    /// The prefix of every key; an int8 model keeps the keys it does not interpret (`info`) under it.
    public static let prefix = "sonoquant."

    // MARK: Every file the tools write

    /// What the file is: "float-checkpoint" (train's model.safetensors and epoch files), "int8-model"
    /// (calibrate), "train-resume" (train's resume.safetensors). Absent in a PyTorch state dict.
    public static let format = "sonoquant.format"
    /// `Architecture.rawValue`: "unet-mobilenet_v2" or "unet-baseline" (a PyTorch file is recognised by its names).
    public static let architecture = "sonoquant.architecture"
    /// The input size WxH the model was trained or calibrated at (`InputSize`).
    public static let size = "sonoquant.size"

    // MARK: Float checkpoints (train)

    /// A factor for the head circumference in mm, fitted on the training split by `sonoquant hc-scale` (the
    /// median of reference / measured HC over its frames): corrects a model that measures heads consistently
    /// large or small. Absent = 1. Float checkpoints and int8 models; calibrate carries it over.
    public static let hcScale = "sonoquant.hc_scale"
    /// JSON: how the scale was fitted (frames, split, the scale before).
    public static let hcScaleFit = "sonoquant.hc_scale_fit"

    /// The fine-tuning preset ("D-all"), or "unknown".
    public static let strategy = "sonoquant.strategy"
    /// The trainable parameter groups ("D0,D1,D2,D3,D4,H").
    public static let trainable = "sonoquant.trainable"
    /// The epoch (1-based) the checkpoint was saved after.
    public static let epoch = "sonoquant.epoch"

    // MARK: Resume files (train --resume)

    /// The run's identity (strategy, size, batch, lr, seed, data...): a resume with other settings is refused.
    public static let run = "sonoquant.run"
    /// Epochs finished and recorded in the file.
    public static let epochsDone = "sonoquant.epochs_done"
    /// Adam's step count.
    public static let adamStep = "sonoquant.adam_step"
    /// metrics.csv rows of the finished epochs.
    public static let metrics = "sonoquant.metrics"

    // MARK: int8 models (calibrate)

    /// The int8 model format version the loader accepts.
    public static let formatVersion = "sonoquant.format_version"
    /// 1: int8 models take the gray frame.
    public static let inputChannels = "sonoquant.input_channels"
    /// JSON: every activation's scale and zero point by value name.
    public static let activations = "sonoquant.activations"
    /// Prose: how the weights are quantized.
    public static let weights = "sonoquant.weights"
    /// Prose: how the requantization works.
    public static let requantization = "sonoquant.requantization"
    /// The checkpoint it was calibrated from (an `info` key).
    public static let sourceCheckpoint = "sonoquant.source_checkpoint"
    /// JSON: calibration frames, split, selection, histogram bins (an `info` key).
    public static let calibration = "sonoquant.calibration"

    // MARK: forward's logits files

    /// The model file that produced the logits.
    public static let model = "sonoquant.model"
    /// "float32" or "int8".
    public static let precision = "sonoquant.precision"
}
