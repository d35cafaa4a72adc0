/// One error type for the engine: every failure names the file (or object) it concerns and what is wrong,
/// so the command-line tool can print it and exit non-zero.
public struct SonoQuantError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file, tensor or argument the problem is about.
    public let subject: String
    /// What is wrong, in words a user can act on.
    public let problem: String

    public init(_ subject: String, _ problem: String) {
        self.subject = subject
        self.problem = problem
    }

    public var description: String { "\(subject): \(problem)" }
}
