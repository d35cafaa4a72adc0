import ArgumentParser
import HC18
import QuantEngine

struct SplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Write a patient-grouped train/test split of an HC18 directory.",
        discussion: """
        Frames of one fetus (NNN_HC, NNN_2HC, NNN_3HC) always land on the same side, so no fetus is seen in \
        training and again in testing. Fetuses are shuffled with the seed (SplitMix64, the same split on \
        every machine) and moved to the test side until it holds round(fraction x frames) frames or just \
        over. The output is `filename,split` with split `train` or `test`, the format `--split` takes \
        everywhere.

        Example:
          sonoquant split --data ../shared/hc18/training_set \\
            --test-fraction 0.2 --seed 0 --out split.csv
        """)

    @Option(help: ArgumentHelp("Directory with training_set_pixel_size_and_HC.csv (its frames are split).", valueName: "dir"))
    var data: String

    @Option(help: "Fraction of frames (not fetuses) to put in the test side, in (0, 1).")
    var testFraction: Double = 0.2

    @Option(help: "Seed of the shuffle of fetuses.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Output CSV path (written atomically).", valueName: "split.csv"))
    var out: String

    func validate() throws {
        guard testFraction > 0, testFraction < 1 else { throw ValidationError("--test-fraction must be in (0, 1)") }
        try checkWritableFile(out, option: "--out")
    }

    func run() throws {
        try reportingErrors {
            let samples = try readPixelSizeCSV(directory: data)
            let rows = patientGroupedSplit(filenames: samples.map { $0.name + ".png" }, testFraction: testFraction, seed: seed)
            let test = rows.filter { $0.split == "test" }
            // Whole fetuses go to one side, so an extreme fraction can empty the other: refuse, write nothing.
            guard !test.isEmpty, test.count < rows.count else {
                throw SonoQuantError(out, "--test-fraction \(testFraction) of \(rows.count) frames leaves \(test.isEmpty ? "no test" : "no training") frames; choose a fraction nearer 0.2")
            }
            try writeFileAtomically(path: out, text: splitCSVText(rows))
            let fetuses = Set(test.map { patientID(ofFrame: $0.filename) }).count
            print("wrote \(out): \(rows.count - test.count) train frames, \(test.count) test frames (\(fetuses) fetuses)")
        }
    }
}
