// The study as a list of independent cells, for a cluster's scheduler or a shell loop (`sonoquant bench plan`,
// `bench run --plan DIR --cell N`, `bench merge --plan DIR`). One cell is one strategy x seed x input size x split:
// exactly what one `bench run` of one strategy and seed does, into its own output directory
// PLAN/cells/<cell name>/, so cells share nothing but the plan file and can run at once on any machines that
// see the plan directory. A cell's state is in its cell.json (running, done, failed, with attempts and the
// error); a cell run again resumes its training from the last finished epoch and reuses its measurements, so
// a requeued or repeated cell continues instead of starting over. The plan stores absolute paths: a task
// runs in whatever working directory the scheduler gives it.
import Calibrate
import Foundation
import HC18
import QuantEngine
import Train

/// The settings every cell of a plan shares (everything but the grid axes).
public struct StudySettings: Codable, Equatable {
    public var data: String
    public var initPath: String?
    public var reference: String?
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    public var calibrationImages: Int
    public var observer: Observer
    public var overlayFrames: Int
    /// Thread counts latency is timed at; training uses the largest.
    public var threads: [Int]
    public var latencyRounds: Int
    public var latencyRunsPerRound: Int

    public init(data: String, initPath: String?, reference: String?, epochs: Int, batchSize: Int, learningRate: Float,
                calibrationImages: Int, observer: Observer, overlayFrames: Int, threads: [Int], latencyRounds: Int,
                latencyRunsPerRound: Int) {
        self.data = data; self.initPath = initPath; self.reference = reference; self.epochs = epochs; self.batchSize = batchSize
        self.learningRate = learningRate; self.calibrationImages = calibrationImages; self.observer = observer
        self.overlayFrames = overlayFrames; self.threads = threads; self.latencyRounds = latencyRounds
        self.latencyRunsPerRound = latencyRunsPerRound
    }
}

/// One strategy x seed x size x split.
public struct StudyCell: Codable, Equatable {
    public var index: Int
    public var strategy: String
    public var seed: UInt64
    public var width: Int
    public var height: Int
    public var split: String

    /// "D-all-seed0-192x128-paper_split": the cell's directory under PLAN/cells/.
    public var name: String {
        "\(strategy)-seed\(seed)-\(width)x\(height)-\(URL(fileURLWithPath: split).deletingPathExtension().lastPathComponent)"
    }

    /// Cells whose rows can share one report table: same size and split.
    public var group: String { "\(width)x\(height)-\(URL(fileURLWithPath: split).deletingPathExtension().lastPathComponent)" }

    public var label: String { "cell \(index) (\(strategy) seed \(seed), \(width)x\(height), \(URL(fileURLWithPath: split).lastPathComponent))" }
}

/// PLAN/plan.json.
public struct StudyPlan: Codable, Equatable {
    public var settings: StudySettings
    public var cells: [StudyCell]

    public static let fileName = "plan.json"

    /// Every strategy x seed x size x split, in that nesting order (the last axis varies slowest), numbered from 0
    /// as Slurm's array task IDs are.
    public init(settings: StudySettings, strategies: [String], seeds: [UInt64], sizes: [InputSize], splits: [String]) {
        self.settings = settings
        var cells: [StudyCell] = []
        for split in splits {
            for size in sizes {
                for strategy in strategies {
                    for seed in seeds {
                        cells.append(StudyCell(index: cells.count, strategy: strategy, seed: seed, width: size.width,
                                               height: size.height, split: split))
                    }
                }
            }
        }
        self.cells = cells
    }

    public static func read(directory: String) throws -> StudyPlan {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SonoQuantError(path, FileManager.default.fileExists(atPath: path)
                                 ? "cannot read file" : "no such file (not a plan directory: make one with `sonoquant bench plan`)",
                                 kind: .fileNotFound)
        }
        do {
            return try JSONDecoder().decode(StudyPlan.self, from: data)
        } catch {
            throw SonoQuantError(path, "not a SonoQuant plan (\(error))", kind: .badData)
        }
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return [UInt8](try encoder.encode(self))
    }

    public func cell(_ index: Int, planFile: String) throws -> StudyCell {
        guard cells.indices.contains(index) else {
            throw SonoQuantError(planFile, "has cells 0..\(cells.count - 1); there is no cell \(index)", kind: .badInput)
        }
        return cells[index]
    }

    /// The harness run of one cell: one strategy and seed into PLAN/cells/<name>/. `cpus` (a scheduler's
    /// allocation) caps the timed thread counts and becomes the largest one, which training uses.
    public func harnessConfiguration(cell: StudyCell, planDirectory: String, cpus: Int?, command: String) throws -> HarnessConfiguration {
        var threads = settings.threads
        if let cpus { threads = threads.filter { $0 < cpus } + [cpus] }
        return HarnessConfiguration(
            dataDirectory: settings.data, splitCSV: cell.split, width: cell.width, height: cell.height, epochs: settings.epochs,
            strategies: [try Strategy.preset(cell.strategy)], seeds: [cell.seed],
            outDirectory: planDirectory + "/cells/" + cell.name, initPath: settings.initPath, batchSize: settings.batchSize,
            learningRate: settings.learningRate, threads: threads, calibrationImages: settings.calibrationImages,
            observer: settings.observer, latencyRounds: settings.latencyRounds, latencyRunsPerRound: settings.latencyRunsPerRound,
            overlayFrames: settings.overlayFrames, referencePath: settings.reference, train: true, command: command)
    }
}

/// PLAN/cells/<name>/cell.json: what became of a cell's attempts.
public struct CellStatus: Codable, Equatable {
    public enum State: String, Codable { case running, done, failed }
    public var cell: Int
    public var state: State
    public var attempts: Int
    public var host: String
    public var started: String
    public var finished: String?
    /// The one-line error of a failed attempt.
    public var error: String?

    public static func read(directory: String) -> CellStatus? {
        guard let data = FileManager.default.contents(atPath: directory + "/cell.json") else { return nil }
        return try? JSONDecoder().decode(CellStatus.self, from: data)
    }

    func write(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileAtomically(path: directory + "/cell.json", bytes: [UInt8](try encoder.encode(self)))
    }
}

/// Runs one cell of the plan in PLAN (resuming what an earlier attempt left) and records its outcome in
/// cell.json. The error of a failed attempt is recorded and rethrown (the process exits non-zero and a
/// scheduler can requeue it). `describe` turns an error into its one-line message.
public func runStudyCell(planDirectory: String, index: Int, cpus: Int?, command: String, peakRSS: (String) -> Int?,
                         describe: (Error) -> String, log: @escaping (String) -> Void) throws {
    let plan = try StudyPlan.read(directory: planDirectory)
    let cell = try plan.cell(index, planFile: planDirectory + "/" + StudyPlan.fileName)
    let configuration = try plan.harnessConfiguration(cell: cell, planDirectory: planDirectory, cpus: cpus, command: command)
    let directory = configuration.outDirectory
    // The lock is held from before cell.json says "running" until it says how the attempt ended: a second
    // attempt of the same cell (a requeue racing a straggler) refuses instead of mixing its state in.
    let lock = try DirectoryLock(directory: directory, purpose: "bench run --cell \(index)")
    defer { withExtendedLifetime(lock) {} }
    let now = { ISO8601DateFormatter().string(from: Date()) }
    var status = CellStatus(cell: index, state: .running, attempts: (CellStatus.read(directory: directory)?.attempts ?? 0) + 1,
                            host: ProcessInfo.processInfo.hostName, started: now(), finished: nil, error: nil)
    try status.write(directory: directory)
    log("\(cell.label): attempt \(status.attempts) on \(status.host), into \(directory)")
    do {
        try runHarness(configuration, heldLock: lock, peakRSS: peakRSS, log: log)
        status.state = .done
    } catch {
        status.state = .failed
        status.error = describe(error)
    }
    status.finished = now()
    try status.write(directory: directory)
    if let message = status.error {
        log("\(cell.label): attempt \(status.attempts) failed: \(message)")
        throw SonoQuantError(directory, "cell \(index) failed: \(message)", kind: .other)
    }
    log("\(cell.label): done")
}

/// Where a cell stands, as `bench merge --plan` reports it.
public struct CellOutcome: Codable, Equatable {
    public enum State: String, Codable {
        case done
        /// An attempt ended with an error (cell.json has it).
        case failed
        /// An attempt started and ended without saying how (killed, out of memory, time limit, node lost).
        case interrupted
        /// An attempt holds the cell's lock now.
        case running
        /// No attempt yet.
        case missing
    }
    public var cell: Int
    public var name: String
    public var state: State
    public var attempts: Int
    public var note: String
}

/// Each cell's state, read from its directory (the lock says whether a "running" cell.json is still true).
public func studyOutcomes(planDirectory: String, plan: StudyPlan) -> [CellOutcome] {
    plan.cells.map { cell in
        let directory = planDirectory + "/cells/" + cell.name
        guard let status = CellStatus.read(directory: directory) else {
            return CellOutcome(cell: cell.index, name: cell.name, state: .missing, attempts: 0, note: "not started")
        }
        let state: CellOutcome.State
        var note = "\(status.attempts) attempt\(status.attempts == 1 ? "" : "s"), last on \(status.host) from \(status.started)"
        switch status.state {
        case .done:
            state = FileManager.default.fileExists(atPath: directory + "/results.json") ? .done : .failed
            if state == .failed { note += ": cell.json says done but results.json is missing" }
        case .failed:
            state = .failed
            note += ": " + (status.error ?? "no error recorded")
        case .running:
            // Taking the lock succeeds only when no process holds it: then the attempt died without a word.
            if (try? DirectoryLock(directory: directory, purpose: "bench merge (checking cell \(cell.index))")) != nil {
                state = .interrupted
                note += ": ended without recording an outcome (killed, time limit or node lost); run the cell again to resume it"
            } else {
                state = .running
            }
        }
        return CellOutcome(cell: cell.index, name: cell.name, state: state, attempts: status.attempts, note: note)
    }
}

/// One merged report per size and split of the plan: every done cell's row; the cells that are not done are
/// listed in the report (`cells`) and in the returned outcomes. With one size and split the report is written
/// to `outDirectory`, with several to `outDirectory/<WxH>-<split>/`.
public func mergeStudy(planDirectory: String, outDirectory: String, command: String) throws -> [CellOutcome] {
    let plan = try StudyPlan.read(directory: planDirectory)
    let outcomes = studyOutcomes(planDirectory: planDirectory, plan: plan)
    var groups: [String] = []
    for cell in plan.cells where !groups.contains(cell.group) { groups.append(cell.group) }
    for group in groups {
        let cells = plan.cells.filter { $0.group == group }
        let out = groups.count == 1 ? outDirectory : outDirectory + "/" + group
        let done = cells.filter { outcomes[$0.index].state == .done }
        let outcomesHere = cells.map { outcomes[$0.index] }
        let inputs = try done.map { (directory: planDirectory + "/cells/" + $0.name,
                                     results: try readHarnessResults(directory: planDirectory + "/cells/" + $0.name)) }
        guard !inputs.isEmpty else { continue }
        var merged = try mergeHarnessResults(inputs, command: command, created: ISO8601DateFormatter().string(from: Date()))
        merged.cells = outcomesHere
        try copyOverlays(of: &merged, inputs: inputs.map(\.directory), to: out)
        try writeHarnessResults(merged, to: out)
    }
    return outcomes
}

/// Slurm settings of the generated job script.
public struct SlurmSettings: Equatable {
    /// The sonoquant executable the tasks run (a path every node sees).
    public var executable: String
    /// At most this many cells run at once (`--array=0-N%K`).
    public var maxRunning: Int
    public var cpusPerTask: Int
    /// Per task, as Slurm's --time takes it (e.g. 04:00:00).
    public var timeLimit: String
    public var partition: String?
    /// A failed task is requeued until it has run this many extra times.
    public var requeues: Int

    public init(executable: String, maxRunning: Int, cpusPerTask: Int, timeLimit: String, partition: String?, requeues: Int) {
        self.executable = executable; self.maxRunning = maxRunning; self.cpusPerTask = cpusPerTask
        self.timeLimit = timeLimit; self.partition = partition; self.requeues = requeues
    }
}

/// Quotes a path for a POSIX shell.
func shellQuoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

/// PLAN/sbatch.sh: one array task per cell. A task whose cell fails requeues itself (SLURM_RESTART_COUNT
/// counts the requeues) and, being the same cell in the same directory, resumes from its last epoch.
public func sbatchScript(plan: StudyPlan, planDirectory: String, slurm: SlurmSettings) -> String {
    let quotedPlan = shellQuoted(planDirectory)
    var lines = [
        "#!/usr/bin/env bash",
        "# The study of \(planDirectory)/plan.json as a Slurm job array: one task per cell (\(plan.cells.count) cells).",
        "# Submit:  sbatch \(planDirectory)/sbatch.sh      Then:  sonoquant bench merge --plan \(planDirectory) --out REPORT_DIR",
        "# Written by `sonoquant bench plan`; a task runs `sonoquant bench run --plan PLAN --cell $SLURM_ARRAY_TASK_ID`.",
        "#SBATCH --job-name=sonoquant-study",
        "#SBATCH --array=0-\(plan.cells.count - 1)%\(slurm.maxRunning)",
        "#SBATCH --cpus-per-task=\(slurm.cpusPerTask)",
        "#SBATCH --ntasks=1",
        "#SBATCH --time=\(slurm.timeLimit)",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        "#SBATCH --output=\(planDirectory)/logs/cell-%a.log",
    ]
    if let partition = slurm.partition { lines.append("#SBATCH --partition=\(partition)") }
    lines += [
        "",
        "cell=\"${SLURM_ARRAY_TASK_ID:?run this script with sbatch (it is a job array)}\"",
        "attempt=$(( ${SLURM_RESTART_COUNT:-0} + 1 ))",
        "echo \"== cell $cell, attempt $attempt, job ${SLURM_ARRAY_JOB_ID}_${cell} on $(hostname), $(date -u +%FT%TZ)\"",
        "status=0",
        "\(shellQuoted(slurm.executable)) bench run --plan \(quotedPlan) --cell \"$cell\" --cpus \"${SLURM_CPUS_PER_TASK:-\(slurm.cpusPerTask)}\" || status=$?",
        "if [ \"$status\" -ne 0 ]; then",
        "    if [ \"${SLURM_RESTART_COUNT:-0}\" -lt \(slurm.requeues) ]; then",
        "        echo \"== cell $cell failed (exit $status): requeued; the next attempt resumes it\"",
        "        scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${cell}\"",
        "    else",
        "        echo \"== cell $cell failed (exit $status) after $attempt attempts: not requeued again\"",
        "    fi",
        "fi",
        "exit \"$status\"",
        "",
    ]
    return lines.joined(separator: "\n")
}
