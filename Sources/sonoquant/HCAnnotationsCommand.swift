import ArgumentParser
import Foundation
import HC18
import ImageCodecs
import QuantEngine

struct HCAnnotationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hc-annotations",
        abstract: "Measure HC from every annotation outline and compare it with the CSV.",
        discussion: """
        Validates the HC measurement: for each frame in DIR/training_set_pixel_size_and_HC.csv, an ellipse \
        is fitted (least squares) to the pixel centres of NNN_HC_Annotation.png, its circumference \
        (Ramanujan) times the pixel size is compared with the CSV's circumference. Prints the mean and \
        largest absolute error and the worst frames.

        Example:
          sonoquant hc-annotations --data ../shared/hc18/training_set \\
            --out hc-annotations.csv
        """)

    @Option(help: ArgumentHelp("Directory with the *_Annotation.png outlines and training_set_pixel_size_and_HC.csv.", valueName: "dir"))
    var data: String

    @Option(help: ArgumentHelp("Optional CSV with one row per frame: filename,reference_mm,measured_mm,error_mm.", valueName: "file.csv"))
    var out: String?

    @OptionGroup var threading: ThreadsOption

    func validate() throws {
    }

    func run() throws {
        try reportingErrors {
            let samples = try readPixelSizeCSV(directory: data)
            var measured = [Double?](repeating: nil, count: samples.count)
            var failures = [String?](repeating: nil, count: samples.count)
            let lock = NSLock()
            parallelChunks(samples.count, threads: threading.count) { range in
                for i in range {
                    let sample = samples[i]
                    var value: Double? = nil, failure: String? = nil
                    do {
                        let outline = try readGrayImage(path: sample.annotationPath)
                        if let m = measureOutlineHC(outline: outline, pixelSizeMM: sample.pixelSizeMM) {
                            value = m.hcMM
                        } else {
                            failure = "\(sample.annotationPath): no ellipse could be fitted"
                        }
                    } catch {
                        failure = "\(error)"
                    }
                    lock.lock(); measured[i] = value; failures[i] = failure; lock.unlock()
                }
            }
            for case let failure? in failures { print("failed: \(failure)") }
            var rows: [(name: String, reference: Double, measured: Double, error: Double)] = []
            for (i, sample) in samples.enumerated() {
                if let value = measured[i] {
                    rows.append((sample.name, sample.referenceHCmm, value, abs(value - sample.referenceHCmm)))
                }
            }
            guard !rows.isEmpty else { throw SonoQuantError(data, "no annotation could be measured") }
            let mean = rows.map(\.error).reduce(0, +) / Double(rows.count)
            let worst = rows.sorted { $0.error > $1.error }
            print("frames measured: \(rows.count) of \(samples.count)")
            print(String(format: "mean |HC - CSV|: %.4f mm   max: %.4f mm (%@)", mean, worst[0].error, worst[0].name))
            print("largest errors:")
            for row in worst.prefix(5) {
                print(String(format: "  %@  CSV %.2f mm  measured %.4f mm  error %.4f mm", row.name, row.reference, row.measured, row.error))
            }
            if let out {
                let text = "filename,reference_mm,measured_mm,error_mm\n" + rows.map {
                    String(format: "%@.png,%.2f,%.4f,%.4f\n", $0.name, $0.reference, $0.measured, $0.error)
                }.joined()
                try writeFileAtomically(path: out, text: text)
                print("wrote \(out)")
            }
            if failures.contains(where: { $0 != nil }) { throw ExitCode.failure }
        }
    }
}
