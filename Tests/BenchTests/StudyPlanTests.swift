import Bench
import Calibrate
import Foundation
import QuantEngine
import XCTest
import TestSupport

final class StudyPlanTests: XCTestCase {
    private func settings(data: String, threads: [Int] = [1, 2]) -> StudySettings {
        StudySettings(data: data, initPath: Fixtures.path("mobilenet_v2_imagenet_f16.safetensors"), reference: nil, epochs: 1,
                      batchSize: 1, learningRate: 1e-3, calibrationImages: 1, observer: .minmax, overlayFrames: 0, threads: threads,
                      latencyRounds: 1, latencyRunsPerRound: 1)
    }

    func testCellsAreTheGridInArrayOrderAndTheScriptRunsEachOnce() throws {
        let plan = StudyPlan(settings: settings(data: "/data"), strategies: ["D-all", "full-ft"], seeds: [0, 1],
                             sizes: [InputSize(width: 192, height: 128), InputSize(width: 288, height: 192)], splits: ["/s/paper_split.csv"])
        XCTAssertEqual(plan.cells.count, 8)
        XCTAssertEqual(plan.cells.map(\.index), Array(0..<8), "numbered as Slurm's array task IDs")
        XCTAssertEqual(plan.cells.prefix(4).map(\.name), ["D-all-seed0-192x128-paper_split", "D-all-seed1-192x128-paper_split",
                                                        "full-ft-seed0-192x128-paper_split", "full-ft-seed1-192x128-paper_split"])
        XCTAssertEqual(plan.cells[4].name, "D-all-seed0-288x192-paper_split")
        XCTAssertEqual(Set(plan.cells.map(\.group)), ["192x128-paper_split", "288x192-paper_split"])
        XCTAssertThrowsError(try plan.cell(8, planFile: "p/plan.json")) { error in
            XCTAssertEqual("\(error)", "p/plan.json: has cells 0..7; there is no cell 8")
        }

        // A scheduler's CPU count caps the timed thread counts and is what training uses (the largest).
        let cell = plan.cells[5]
        XCTAssertEqual(try plan.harnessConfiguration(cell: cell, planDirectory: "/p", cpus: nil, command: "").threads, [1, 2])
        XCTAssertEqual(try plan.harnessConfiguration(cell: cell, planDirectory: "/p", cpus: 1, command: "").threads, [1])
        let wide = try plan.harnessConfiguration(cell: cell, planDirectory: "/p", cpus: 8, command: "")
        XCTAssertEqual(wide.threads, [1, 2, 8])
        XCTAssertEqual(wide.outDirectory, "/p/cells/D-all-seed1-288x192-paper_split")
        XCTAssertEqual(wide.runDirectory(strategy: wide.strategies[0], seed: 1), "/p/cells/D-all-seed1-288x192-paper_split/D-all-seed1")
        XCTAssertEqual([wide.width, wide.height, Int(wide.seeds[0])], [288, 192, 1])

        let script = sbatchScript(plan: plan, planDirectory: "/shared/study", slurm: SlurmSettings(
            executable: "/opt/sq/sonoquant", maxRunning: 3, cpusPerTask: 2, timeLimit: "04:00:00", partition: "cpu", requeues: 2))
        for line in ["#SBATCH --array=0-7%3", "#SBATCH --cpus-per-task=2", "#SBATCH --requeue", "#SBATCH --partition=cpu",
                     "#SBATCH --output=/shared/study/logs/cell-%a.log", "#SBATCH --open-mode=append",
                     "'/opt/sq/sonoquant' bench run --plan '/shared/study' --cell \"$cell\" --cpus \"${SLURM_CPUS_PER_TASK:-2}\" || status=$?",
                     "    if [ \"${SLURM_RESTART_COUNT:-0}\" -lt 2 ]; then", "        scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${cell}\""] {
            XCTAssertTrue(script.split(separator: "\n").contains(Substring(line)), "missing: \(line)\n\(script)")
        }
    }

    /// Four cells on one training frame at 32x32: one done, one failed (its split file is missing), one
    /// interrupted (an attempt that died without a word) and one never started; the merge says which is which.
    func testCellOutcomesAndTheMergedReportListThem() throws {
        let root = try temporaryDirectory(self, "study")
        try "filename,split\n010_HC.png,train\n020_HC.png,test\n".write(toFile: root + "/split.csv", atomically: true, encoding: .utf8)
        let plan = StudyPlan(settings: settings(data: Fixtures.hc18Frames, threads: [1]), strategies: ["D4+H"], seeds: [3, 4],
                             sizes: [InputSize(width: 32, height: 32)], splits: [root + "/split.csv", root + "/gone.csv"])
        let directory = root + "/plan"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeFileAtomically(path: directory + "/plan.json", bytes: try plan.encoded())
        XCTAssertEqual(try StudyPlan.read(directory: directory), plan)
        let run = { (index: Int) in
            try runStudyCell(planDirectory: directory, index: index, cpus: nil, command: "test", peakRSS: { _ in 42 },
                             describe: { "\($0)" }, log: { _ in })
        }
        try run(0)
        XCTAssertThrowsError(try run(2)) { error in
            XCTAssertTrue("\(error)".contains("cell 2 failed: \(root)/gone.csv"), "\(error)")
        }
        let lost = directory + "/cells/" + plan.cells[3].name
        try FileManager.default.createDirectory(atPath: lost, withIntermediateDirectories: true)
        try #"{"attempts":1,"cell":3,"host":"node7","started":"2026-12-05T00:00:00Z","state":"running"}"#
            .write(toFile: lost + "/cell.json", atomically: true, encoding: .utf8)

        let outcomes = try mergeStudy(planDirectory: directory, outDirectory: root + "/report", command: "test")
        XCTAssertEqual(outcomes.map(\.state), [.done, .missing, .failed, .interrupted])
        XCTAssertEqual(outcomes.map(\.attempts), [1, 0, 1, 1])
        XCTAssertTrue(outcomes[2].note.contains("gone.csv"), outcomes[2].note)
        // Two splits: one report per split, and only the split with a done cell has rows to report.
        let merged = try readHarnessResults(directory: root + "/report/32x32-split")
        XCTAssertEqual(merged.rows.map { "\($0.strategy) \($0.seed)" }, ["D4+H 3"])
        XCTAssertEqual(merged.cells?.map(\.state), [.done, .missing])
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/report/32x32-gone/results.json"))
        let markdown = try String(contentsOfFile: root + "/report/32x32-split/REPORT.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("1 of 2 cells with this size and split are done"), markdown)
        XCTAssertTrue(markdown.contains("| 1 | D4+H-seed4-32x32-split | missing | 0 | not started |"), markdown)

        // Run again, the done cell is not retrained or re-measured, and counts a second attempt.
        try runStudyCell(planDirectory: directory, index: 0, cpus: nil, command: "test",
                         peakRSS: { _ in XCTFail("no measuring expected"); return nil }, describe: { "\($0)" }, log: { _ in })
        XCTAssertEqual(studyOutcomes(planDirectory: directory, plan: plan)[0].attempts, 2)
        XCTAssertEqual(try readHarnessResults(directory: directory + "/cells/" + plan.cells[0].name).rows, merged.rows)
    }
}
