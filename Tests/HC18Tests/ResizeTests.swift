import HC18
import ImageCodecs
import QuantEngine
import XCTest
import TestSupport

final class ResizeTests: XCTestCase {
    // A 7x5 pattern and PIL's Image.resize((w, h), BILINEAR) of it (Pillow 11, printed once).
    let pattern: [UInt8] = [0, 37, 74, 111, 148, 185, 222, 91, 141, 191, 241, 35, 85, 135,
                            182, 245, 52, 115, 178, 241, 48, 17, 93, 169, 245, 65, 141, 217,
                            108, 197, 30, 119, 208, 41, 130]

    func testMatchesPILBilinearExactly() {
        let image = GrayImage(width: 7, height: 5, pixels: pattern)
        let expected: [(Int, Int, [UInt8])] = [
            (3, 2, [110, 141, 141, 122, 145, 137]),
            (4, 3, [61, 128, 127, 163, 151, 142, 148, 140, 106, 125, 142, 131]),
            (7, 2, [79, 129, 121, 171, 105, 155, 147, 87, 163, 99, 175, 135, 129, 147]),
            (5, 5, [12, 58, 111, 164, 210, 108, 169, 194, 57, 118, 203, 138, 115, 206, 112,
                    42, 135, 198, 99, 192, 138, 104, 119, 134, 100]),
            (11, 8, [0, 17, 40, 64, 87, 111, 135, 158, 182, 205, 222, 40, 59, 86, 113, 140, 168, 124, 110, 137, 164, 184,
                     97, 120, 151, 173, 201, 233, 113, 58, 90, 114, 130, 154, 181, 202, 128, 117, 154, 141, 149, 187, 129, 75,
                     130, 161, 187, 118, 113, 156, 147, 161, 203, 150, 101, 27, 62, 108, 145, 189, 237, 132, 93, 140, 179, 206,
                     68, 106, 146, 108, 121, 174, 156, 129, 90, 130, 168, 108, 148, 182, 76, 62, 119, 176, 162, 56, 90, 130]),
        ]
        for (w, h, pixels) in expected {
            XCTAssertEqual(resizeBilinear(image, width: w, height: h).pixels, pixels, "\(w)x\(h)")
        }
        XCTAssertEqual(resizeBilinear(image, width: 7, height: 5), image)  // same size: identity
    }

    /// The PyTorch fixture's inputs were made with PIL on real frames: ours must be the same bytes.
    func testMatchesThePyTorchFixtureInputs() throws {
        let forward = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors"))
        for (name, w, h) in [("020_HC", 192, 128), ("208_HC", 160, 96), ("010_2HC", 64, 64)] {
            let input = try forward.tensor("input_\(w)x\(h)", shape: [1, 3, h, w])
            let frame = try readGrayImage(path: Fixtures.hc18Frames + "/\(name).png")
            let ours = resizeBilinear(frame, width: w, height: h).pixels.map { Float($0) / 255 }
            XCTAssertEqual(ours, Array(input.data[0..<(w * h)]), name)
        }
    }

    func testMaskResizeThresholdsTheBilinearValueAtOneHalf() {
        // 4x1 -> 2x1: output 0 weighs inputs 0, 1, 2 by 0.75, 0.75, 0.25 (/ 1.75), output 1 inputs
        // 1, 2, 3 by 0.25, 0.75, 0.75: the triangle filter stretched by the scale factor 2.
        XCTAssertEqual(resizeMask([1, 1, 0, 0], width: 4, height: 1, toWidth: 2, toHeight: 1), [1, 0])  // 0.86, 0.14
        XCTAssertEqual(resizeMask([1, 0, 0, 0], width: 4, height: 1, toWidth: 2, toHeight: 1), [0, 0])  // 0.43, 0
        XCTAssertEqual(resizeMask([0, 1, 1, 1], width: 4, height: 1, toWidth: 2, toHeight: 1), [1, 1])  // 0.57, 1
    }
}
