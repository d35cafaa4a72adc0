import ArgumentParser
import Foundation
import QuantEngine

/// Runs a command body and turns a thrown error into `error: <file>: <problem>` on stderr and exit
/// status 1 (ArgumentParser would print "Error: ..." with its own capitalisation and formatting).
/// Usage errors (ValidationError, ExitCode, CleanExit) pass through to ArgumentParser unchanged.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as SonoQuantError {
        FileHandle.standardError.write(Data("error: \(error.subject): \(error.problem)\n".utf8))
        throw ExitCode.failure
    } catch let error as ValidationError {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
