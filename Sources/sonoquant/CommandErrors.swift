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

/// Refuses an output path that is one of the command's input files (`cp` refuses to copy a file onto itself):
/// `calibrate --model m --out m` would replace the checkpoint it reads, `forward --input x --output x` the input.
/// Paths are compared after resolving symlinks, `..` and the working directory.
func refuseOverwritingInput(output: String, option: String, inputs: [(path: String, option: String)]) throws {
    let target = canonicalPath(output)
    for input in inputs where canonicalPath(input.path) == target {
        throw ValidationError("\(option) \(output) is the \(input.option) file: refusing to overwrite an input; choose another \(option)")
    }
}

func canonicalPath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
}
