import HC18
import Foundation
import QuantEngine
import Train
import XCTest
import TestSupport

final class AugmentationTests: XCTestCase {
    /// An off-centre ellipse drawn identically as frame and mask must stay identical (frame thresholded at
    /// 0.5 == mask) under any augmentation: the geometry is the same for both.
    func testAugmentationKeepsImageAndMaskAligned() {
        let (w, h) = (48, 32)
        var shape = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w {
            let dx = (Float(x) - 30) / 12, dy = (Float(y) - 12) / 7
            shape[y * w + x] = dx * dx + dy * dy <= 1 ? 1 : 0
        } }
        var rng = SplitMix64(seed: 11)
        var sawFlip = (h: false, v: false)
        for _ in 0..<40 {
            let a = Augmentation.random(&rng)
            XCTAssertLessThanOrEqual(abs(a.rotationDegrees), 25)
            sawFlip.h = sawFlip.h || a.flipHorizontally
            sawFlip.v = sawFlip.v || a.flipVertically
            let (image, mask) = a.apply(image: shape, mask: shape, width: w, height: h)
            XCTAssertEqual(image.map { $0 >= 0.5 ? Float(1) : 0 }, mask, "\(a)")
            XCTAssertGreaterThan(mask.reduce(0, +), 100)  // the head is still there
        }
        XCTAssertTrue(sawFlip.h && sawFlip.v)
    }

    func testIdentityFlipsAndReflectedBorder() {
        let (w, h) = (4, 3)
        let image: [Float] = (0..<(w * h)).map(Float.init)
        let mask = [Float](repeating: 0, count: w * h)
        XCTAssertEqual(Augmentation(rotationDegrees: 0, flipHorizontally: false, flipVertically: false)
            .apply(image: image, mask: mask, width: w, height: h).image, image)
        XCTAssertEqual(Augmentation(rotationDegrees: 0, flipHorizontally: true, flipVertically: false)
            .apply(image: image, mask: mask, width: w, height: h).image, [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8])
        XCTAssertEqual(Augmentation(rotationDegrees: 0, flipHorizontally: false, flipVertically: true)
            .apply(image: image, mask: mask, width: w, height: h).image, [8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3])
        // 180 degrees about the centre is both flips (up to float rounding of cos/sin).
        let turned = Augmentation(rotationDegrees: 180, flipHorizontally: false, flipVertically: false)
            .apply(image: image, mask: mask, width: w, height: h).image
        for (a, b) in zip(turned, [Float](image.reversed())) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }
}

final class TrainingRunTests: XCTestCase {
    func configuration(_ directory: String, epochs: Int, resume: Bool, strategy: String = "D-all", threads: Int = 2) -> TrainingConfiguration {
        TrainingConfiguration(dataDirectory: Fixtures.path("hc18/training_set"), splitCSV: Fixtures.path("hc18/split.csv"),
                              strategy: try! Strategy.preset(strategy), width: 64, height: 64, epochs: epochs, batchSize: 2,
                              learningRate: 1e-3, seed: 5, initPath: Fixtures.path("pytorch_D-all_192x128.safetensors"),
                              runDirectory: directory, resume: resume, threads: threads, limitTrain: 4, limitTest: 2)
    }

    /// Every sum of a step (per-channel statistics, weight gradients, the loss) runs in an order that does not
    /// depend on the thread count, so training gives the same weights, bit for bit, on 1 and 3 threads.
    func testTrainingGivesTheSameWeightsForAnyThreadCount() throws {
        let root = NSTemporaryDirectory() + "sonoquant-threads-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let one = try TrainingRun(configuration: configuration(root + "/one", epochs: 1, resume: false, strategy: "full-ft", threads: 1)) { _ in }.run()
        let three = try TrainingRun(configuration: configuration(root + "/three", epochs: 1, resume: false, strategy: "full-ft", threads: 3)) { _ in }.run()
        XCTAssertEqual(one[0].trainLoss, three[0].trainLoss)
        let a = try SafeTensorsFile(path: root + "/one/model.safetensors"), b = try SafeTensorsFile(path: root + "/three/model.safetensors")
        XCTAssertEqual(a.names, b.names)
        for name in a.names { XCTAssertEqual(try a.tensor(name), try b.tensor(name), name) }
    }

    /// A run never replaces files it does not own, never starts over when told to resume, and refuses a
    /// directory another run holds (DirectoryLock): each a one-line error naming the directory.
    func testRefusesForeignFilesMissingResumeAndALockedDirectory() throws {
        let root = NSTemporaryDirectory() + "sonoquant-refuse-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let foreign = root + "/foreign", empty = root + "/empty", locked = root + "/locked"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try writeFileAtomically(path: foreign + "/model.safetensors", text: "someone's model")
        try writeFileAtomically(path: foreign + "/metrics.csv", text: "someone's metrics")
        assertSonoQuantError(try TrainingRun(configuration: configuration(foreign, epochs: 1, resume: false)) { _ in }.run(),
                             subject: foreign, contains: "holds metrics.csv, model.safetensors of another run but no resume.safetensors")
        XCTAssertEqual(try String(contentsOfFile: foreign + "/model.safetensors", encoding: .utf8), "someone's model")
        assertSonoQuantError(try TrainingRun(configuration: configuration(empty, epochs: 1, resume: true)) { _ in }.run(),
                             subject: empty, contains: "--resume: no resume.safetensors here")
        let lock = try DirectoryLock(directory: locked, purpose: "another run")
        assertSonoQuantError(try TrainingRun(configuration: configuration(locked, epochs: 1, resume: false)) { _ in }.run(),
                             subject: locked, contains: "in use by another sonoquant process")
        withExtendedLifetime(lock) {}
    }

    /// Two epochs in one go, and one epoch then a resumed second: the same weights, bit for bit.
    func testResumeGivesIdenticalWeights() throws {
        let root = NSTemporaryDirectory() + "sonoquant-resume-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = root + "/straight", split = root + "/split"
        let metrics = try TrainingRun(configuration: configuration(straight, epochs: 2, resume: false)) { _ in }.run()
        XCTAssertEqual(metrics.count, 2)
        try TrainingRun(configuration: configuration(split, epochs: 1, resume: false)) { _ in }.run()
        // Without --resume an existing run is not overwritten.
        XCTAssertThrowsError(try TrainingRun(configuration: configuration(split, epochs: 2, resume: false)) { _ in }.run())
        let resumed = try TrainingRun(configuration: configuration(split, epochs: 2, resume: true)) { _ in }.run()
        // (Earlier epochs' metrics come back from the resume file, rounded as in metrics.csv.)
        for (r, m) in zip(resumed, metrics) { XCTAssertEqual(r.trainLoss, m.trainLoss, accuracy: 1e-6) }
        let a = try SafeTensorsFile(path: straight + "/model.safetensors"), b = try SafeTensorsFile(path: split + "/model.safetensors")
        XCTAssertEqual(a.names, b.names)
        for name in a.names { XCTAssertEqual(try a.tensor(name), try b.tensor(name), name) }
        // The checkpoint changed from the initial weights and loads as a model.
        let initial = try SafeTensorsFile(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        XCTAssertNotEqual(try a.tensor("segmentation_head.0.weight"), try initial.tensor("segmentation_head.0.weight"))
        XCTAssertEqual(try a.tensor("encoder.features.0.0.weight"), try initial.tensor("encoder.features.0.0.weight"))  // frozen
        let csv = try String(contentsOfFile: straight + "/metrics.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: straight + "/epoch-02.safetensors"))
    }

    /// A cosine schedule is defined by the run's length: resuming it with another --epochs is refused (a
    /// constant-rate run may be extended), and its first epoch already differs from the constant rate's.
    func testCosineScheduleIsPartOfTheRunIdentity() throws {
        let root = NSTemporaryDirectory() + "sonoquant-cosine-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var cosine = configuration(root + "/cosine", epochs: 1, resume: false)
        cosine.schedule = .cosine
        try TrainingRun(configuration: cosine) { _ in }.run()
        try TrainingRun(configuration: configuration(root + "/constant", epochs: 1, resume: false)) { _ in }.run()
        // The first step is at the same rate, the second at half of it (2 steps in this run).
        let name = "segmentation_head.0.weight"
        XCTAssertNotEqual(try SafeTensorsFile(path: root + "/cosine/model.safetensors").tensor(name),
                          try SafeTensorsFile(path: root + "/constant/model.safetensors").tensor(name))
        var longer = cosine
        longer.epochs = 2
        longer.resume = true
        assertSonoQuantError(try TrainingRun(configuration: longer) { _ in }.run(),
                             subject: root + "/cosine/resume.safetensors", contains: "started with different settings")
    }
}
