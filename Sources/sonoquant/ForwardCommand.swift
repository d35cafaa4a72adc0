import ArgumentParser

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forward", abstract: "(not implemented yet)")
    func run() throws { throw ValidationError("forward is not implemented yet") }
}
