import Foundation
import HC18
import QuantEngine
import XCTest
import TestSupport

final class DatasetTests: XCTestCase {
    func testFixtureSplitLoads() throws {
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: Fixtures.hc18Split)
        XCTAssertEqual(dataset.train.count, 24)
        XCTAssertEqual(dataset.test.map(\.name), ["010_2HC", "019_2HC", "020_HC", "023_2HC", "023_HC", "031_HC", "034_HC", "208_HC"])
        let first = dataset.train[0]
        XCTAssertEqual(first.name, "000_HC")
        XCTAssertEqual(first.pixelSizeMM, 0.0691358041432)
        XCTAssertEqual(first.referenceHCmm, 44.3)
        XCTAssertEqual(first.imagePath, Fixtures.hc18Frames + "/000_HC.png")
        XCTAssertEqual(first.annotationPath, Fixtures.hc18Frames + "/000_HC_Annotation.png")
        XCTAssertEqual(dataset.test[0].patientID, "010")
    }

    func testBadSplitFilesNameTheProblem() throws {
        let dir = try temporaryDirectory(self)
        let cases: [(String, String)] = [
            ("filename,split\n999_HC.png,test\n", "line 2: 999_HC.png is not in"),
            ("filename,split\n000_HC.png,validation\n", "line 2: expected `filename,train|test`"),
            ("filename,split\n000_HC.png,test\n000_HC.png,train\n", "line 3: 000_HC.png is listed twice"),
            ("filename,split\n", "no frames listed"),
        ]
        for (index, (text, problem)) in cases.enumerated() {
            let path = dir + "/split\(index).csv"
            try writeFileAtomically(path: path, text: text)
            XCTAssertThrowsError(try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: path)) { error in
                XCTAssertEqual((error as? SonoQuantError)?.subject, path)
                XCTAssertTrue((error as? SonoQuantError)?.problem.contains(problem) ?? false, "\(error)")
            }
        }
        XCTAssertThrowsError(try HC18Dataset(directory: dir, splitCSV: Fixtures.hc18Split)) { error in
            XCTAssertEqual((error as? SonoQuantError)?.subject, dir + "/training_set_pixel_size_and_HC.csv")
        }
    }

    func testLoadSampleSquashesFrameAndMask() throws {
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: Fixtures.hc18Split)
        let sample = try XCTUnwrap(dataset.test.first { $0.name == "020_HC" })
        let prepared = try loadSample(sample, width: 192, height: 128)
        XCTAssertEqual([prepared.originalWidth, prepared.originalHeight], [800, 540])
        XCTAssertEqual(prepared.image.count, 192 * 128)
        XCTAssertEqual(prepared.mask.count, 192 * 128)
        XCTAssertTrue(prepared.mask.allSatisfy { $0 == 0 || $0 == 1 })
        // The same bytes as the PyTorch fixture's input.
        let forward = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors"))
        XCTAssertEqual(prepared.image, Array(try forward.tensor("input_192x128").data[0..<(192 * 128)]))
        // The squashed mask measures (nearly) the reference HC.
        let m = try XCTUnwrap(measureHC(mask: prepared.mask, width: 192, height: 128, originalWidth: 800,
                                        originalHeight: 540, pixelSizeMM: sample.pixelSizeMM))
        XCTAssertEqual(m.hcMM, sample.referenceHCmm, accuracy: 0.01 * sample.referenceHCmm)
    }

    func testPatientGroupedSplitKeepsFetusesTogether() throws {
        let samples = try readPixelSizeCSV(directory: Fixtures.hc18Frames)
        let filenames = samples.map { $0.name + ".png" }
        let rows = patientGroupedSplit(filenames: filenames, testFraction: 0.25, seed: 7)
        XCTAssertEqual(rows.map(\.filename), filenames)
        var sides: [String: Set<String>] = [:]
        for row in rows { sides[patientID(ofFrame: row.filename), default: []].insert(row.split) }
        XCTAssertTrue(sides.values.allSatisfy { $0.count == 1 }, "a fetus is on both sides: \(sides)")
        let test = rows.filter { $0.split == "test" }.count
        XCTAssertGreaterThanOrEqual(test, 8)   // round(0.25 * 32), reached or just exceeded
        XCTAssertLessThanOrEqual(test, 10)
        // Deterministic for a seed, different for another.
        XCTAssertEqual(patientGroupedSplit(filenames: filenames, testFraction: 0.25, seed: 7).map(\.split), rows.map(\.split))
        XCTAssertNotEqual(patientGroupedSplit(filenames: filenames, testFraction: 0.25, seed: 8).map(\.split), rows.map(\.split))
        // The written file reads back through the dataset.
        let dir = try temporaryDirectory(self)
        try writeFileAtomically(path: dir + "/split.csv", text: splitCSVText(rows))
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: dir + "/split.csv")
        XCTAssertEqual(dataset.test.count, test)
        XCTAssertEqual(dataset.train.count, 32 - test)
    }

    func testSplitMix64KnownSequence() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        var g = SplitMix64(seed: 0)
        XCTAssertEqual(g.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(g.next(), 0x6E78_9E6A_A1B9_65F4)
    }
}
