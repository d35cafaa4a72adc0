import ArgumentParser
import Foundation
import QuantEngine
import Train

@main
struct SonoQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sonoquant",
        abstract: "Fine-tune, quantize and deploy a fetal-head ultrasound U-Net (MobileNetV2 encoder) in pure Swift.",
        discussion: """
        The usual path: `train` a fine-tuning strategy on HC18, `calibrate` it to an int8 model file, \
        `bench` accuracy / size / latency per strategy and precision, then `segment` frames on the board. \
        `forward` and `evaluate` check a model against PyTorch and against the test split.

        Kernels: one binary runs the fastest kernels for the CPU it finds (x86-64: portable, avx2, \
        avx512-vnni; arm64: neon). SONOQUANT_KERNELS=<path> forces one; `latency`, `segment` and the bench \
        report name the path that ran.
        """,
        subcommands: [ForwardCommand.self, LatencyCommand.self, EvaluateCommand.self, TrainCommand.self, TrainSpeedCommand.self, CalibrateCommand.self,
                      SplitCommand.self, HCAnnotationsCommand.self, HCScaleCommand.self,
                      SegmentCommand.self, BenchCommand.self, BenchProbeCommand.self]
    )

    static func main() {
        // A SONOQUANT_KERNELS that names no usable path is an error, not a silent fallback.
        do {
            try KernelPath.checkEnvironment()
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(1)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(reporting: error)
        }
    }

    /// ArgumentParser's own exit, except that a usage error starts with "error:" like every other error
    /// the tool prints (`reportingErrors`), where ArgumentParser writes "Error:". Help and version go
    /// to standard output as ArgumentParser prints them.
    static func exit(reporting error: Error) -> Never {
        let code = exitCode(for: error)
        guard code != .success else { exit(withError: error) }
        var text = fullMessage(for: error)
        if text.hasPrefix("Error: ") { text = "error: " + text.dropFirst("Error: ".count) }
        if !text.isEmpty { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        Foundation.exit(code.rawValue)
    }
}
