import ArgumentParser
import Foundation
import QuantEngine

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run a model on an input tensor and write its logits (the interop check against PyTorch).",
        discussion: """
        Reads the float32 tensor `input` [N, C, H, W] from a safetensors file and writes the tensor \
        `logits` [N, 1, H, W] (float32, before the sigmoid) to another, so the result can be compared \
        with PyTorch's on the same weights and input.

        The model is a float checkpoint (F32 or F16: runs in float32) of either architecture, detected from \
        the file: unet-mobilenet_v2 (segmentation_models_pytorch names) or unet-baseline (the plain U-Net of \
        scripts/peers/unet_baseline.py, sides multiples of 16); or an int8 model file written by \
        `sonoquant calibrate` (runs in int8; logits dequantized).

        The input is what segmentation_models_pytorch takes: values in [0, 1], C = 3 (RGB; a gray frame \
        is the same value in all three channels) or C = 1 (gray: the first convolution's RGB weights are \
        summed, which gives the same result), H and W multiples of 32 (16 for unet-baseline).

        Make an input and compare in Python (pip install torch safetensors \
        segmentation-models-pytorch):
          from safetensors.torch import save_file, load_file
          save_file({"input": x.contiguous()}, "in.safetensors")  # x: [N,3,H,W]
          # sonoquant forward --model m.safetensors \\
          #     --input in.safetensors --output out.safetensors
          y = load_file("out.safetensors")["logits"]  # compare with model(x)

        Example:
          sonoquant forward \\
            --model fixtures/pytorch_D-all_192x128.safetensors \\
            --input in.safetensors --output out.safetensors --threads 2
        """
    )

    @Option(help: ArgumentHelp("Model file: a float checkpoint with segmentation_models_pytorch names (F32 or F16 safetensors), or an int8 model from `sonoquant calibrate`.",
                               valueName: "model.safetensors"))
    var model: String

    @Option(help: ArgumentHelp("Safetensors file holding the float32 tensor `input` [N, C, H, W].", valueName: "in.safetensors"))
    var input: String

    @Option(help: ArgumentHelp("Where to write the tensor `logits` [N, 1, H, W] (written atomically).", valueName: "out.safetensors"))
    var output: String

    @OptionGroup var threading: ThreadsOption

    func validate() throws {
        try refuseOverwritingInput(output: output, option: "--output", inputs: [(input, "--input"), (model, "--model")])
        try checkWritableFile(output, option: "--output")
    }

    func run() throws {
        try reportingErrors {
            let network = try loadSegmentationModel(path: model)
            let tensor = try readInput()
            let start = DispatchTime.now().uptimeNanoseconds
            let logits: Tensor
            do {
                logits = try network.logits(for: tensor, threads: threading.count)
            } catch let error as SonoQuantError {
                throw SonoQuantError(input, "tensor `input`: \(error.problem)", kind: error.kind)
            }
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            var metadata = ModelMetadata()
            metadata.model = model
            metadata.precision = network.precision
            var writer = SafeTensorsWriter(metadata: metadata)
            writer.add("logits", logits)
            try writer.write(to: output)
            print("wrote logits \(logits.shape) to \(output) (\(network.precision) model, \(threading.count) thread(s), \(String(format: "%.1f", milliseconds)) ms)")
        }
    }

    /// The `input` tensor, checked: float32, four dimensions.
    private func readInput() throws -> Tensor {
        let file = try SafeTensorsFile(path: input)
        guard let entry = file.entries["input"] else {
            let found = file.names.prefix(5).joined(separator: ", ")
            throw SonoQuantError(input, "no tensor named `input` (found: \(found.isEmpty ? "no tensors" : found))")
        }
        guard entry.dtype == .f32 else {
            throw SonoQuantError(input, "tensor `input` is \(entry.dtype.rawValue); expected F32")
        }
        guard entry.shape.count == 4 else {
            throw SonoQuantError(input, "tensor `input` has shape \(entry.shape); expected [N, C, H, W]")
        }
        return try file.tensor("input")
    }
}
