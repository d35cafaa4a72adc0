import ArgumentParser

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "evaluate", abstract: "(not implemented yet)")
    func run() throws { throw ValidationError("evaluate is not implemented yet") }
}
