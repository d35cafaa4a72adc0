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

/// Checks before any long work that `path` can be written: it is not a directory and its directory exists
/// (or can be created) and is writable. `evaluate` and `latency` used to do all their work and only then
/// fail to write; `train` printed the raw NSCocoaErrorDomain text.
func checkWritableFile(_ path: String, option: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("\(option) \(path) is a directory; give a file name")
    }
    try checkWritableDirectory((path as NSString).deletingLastPathComponent, option: option, for: path)
}

/// The same for an output directory (created if missing, as the commands do).
func checkWritableDirectory(_ directory: String, option: String, for path: String? = nil) throws {
    let directory = directory.isEmpty ? "." : directory
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw ValidationError("\(option) \(path ?? directory): \(directory) is a file, not a directory") }
        guard access(directory, W_OK) == 0 else {
            throw ValidationError("\(option) \(path ?? directory): cannot write in \(directory) (\(String(cString: strerror(errno))))")
        }
    } else {
        // Missing: the nearest existing ancestor must be writable for the command to create it.
        var ancestor = (directory as NSString).deletingLastPathComponent
        while !ancestor.isEmpty && !FileManager.default.fileExists(atPath: ancestor) { ancestor = (ancestor as NSString).deletingLastPathComponent }
        let parent = ancestor.isEmpty ? "." : ancestor
        guard access(parent, W_OK) == 0 else {
            throw ValidationError("\(option) \(path ?? directory): cannot create \(directory) in \(parent) (\(String(cString: strerror(errno))))")
        }
    }
}
