// segment-app MODEL FRAME PIXEL_SIZE_MM [WxH]: prints the frame's head circumference in mm (or why none).
import Deploy
import Foundation
import QuantEngine

let arguments = CommandLine.arguments
guard arguments.count == 4 || arguments.count == 5, let pixelSize = Double(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: segment-app MODEL FRAME PIXEL_SIZE_MM [WxH]\n".utf8))
    exit(2)
}
do {
    let model = try loadSegmentationModel(path: arguments[1])       // float checkpoint or int8 model
    let size = arguments.count == 5 ? InputSize(arguments[4]) : nil  // default: the size the file records
    let segmenter = try Segmenter(model: model, modelName: arguments[1], size: size, threads: 2)
    let frame = try segmenter.segment(path: arguments[2], scale: FrameScale(pixelSizeMM: pixelSize))
    if let hc = frame.result.hcMM {
        print("HC \(hc) mm\(frame.result.needsReview ? " (check: \(frame.result.reviewReasons.joined(separator: "; ")))" : "")")
    } else {
        print("no head found: \(frame.result.notes.joined(separator: "; "))")
    }
} catch let error as SonoQuantError {
    // `kind` says what to do about it; the message is the CLI's one line.
    FileHandle.standardError.write(Data("error (\(error.kind)): \(error)\n".utf8))
    exit(1)
}
