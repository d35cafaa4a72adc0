import HC18
import ImageCodecs
import QuantEngine
import XCTest
import TestSupport

final class ImageCodecsTests: XCTestCase {
    let codecs = Fixtures.path("codecs/")
    // The 4x3 gray pattern scripts/peers/make_codec_fixtures.py writes.
    let gray: [UInt8] = [0, 50, 100, 150, 200, 250, 255, 1, 17, 34, 68, 136]
    // PIL's convert("L") of the RGB pattern (R = gray, G = gray upside down, B = 255 - gray).
    let grayOfRGB: [UInt8] = [39, 58, 87, 137, 183, 222, 226, 30, 32, 65, 100, 142]

    func testPNGFormatsDecodeToGray() throws {
        for name in ["gray8.png", "gray_alpha.png"] {
            let image = try readGrayImage(path: codecs + name)
            XCTAssertEqual([image.width, image.height], [4, 3], name)
            XCTAssertEqual(image.pixels, gray, name)
        }
        // Colour: BT.601 luma, bit-identical to PIL; alpha is dropped, not composited.
        for name in ["rgb8.png", "rgba8.png", "palette.png"] {
            XCTAssertEqual(try readGrayImage(path: codecs + name).pixels, grayOfRGB, name)
        }
        XCTAssertEqual(try readGrayImage(path: codecs + "bilevel.png").pixels, gray.map { $0 > 100 ? 255 : 0 })
    }

    func testSixteenBitPNGIsScaledNotGammaConverted() throws {
        // Samples v * 257 come back as v; 128 and 129 (of 65535) round to 0 and 1.
        var expected = gray
        expected[0] = 0
        expected[1] = 1
        XCTAssertEqual(try readGrayImage(path: codecs + "gray16.png").pixels, expected)
    }

    func testJPEGDecodesToLuma() throws {
        let grayJPEG = try readGrayImage(path: codecs + "gray.jpg")
        XCTAssertEqual(grayJPEG.pixels, [0, 50, 100, 150, 200, 251, 255, 1, 17, 34, 67, 136])  // PIL's decode
        // Colour JPEGs: libjpeg's Y channel vs PIL's RGB decode + luma: within 1 level.
        let rgbJPEG = try readGrayImage(path: codecs + "rgb.jpg")
        let pil: [UInt8] = [39, 57, 87, 137, 183, 222, 226, 29, 32, 65, 100, 142]
        for (ours, theirs) in zip(rgbJPEG.pixels, pil) { XCTAssertLessThanOrEqual(abs(Int(ours) - Int(theirs)), 1) }
        let progressive = try readGrayImage(path: codecs + "progressive.jpg")
        let pilProgressive: [UInt8] = [40, 58, 87, 137, 180, 222, 224, 33, 33, 68, 101, 138]
        for (ours, theirs) in zip(progressive.pixels, pilProgressive) { XCTAssertLessThanOrEqual(abs(Int(ours) - Int(theirs)), 1) }
        // CMYK (Adobe, inverted): the gray frame written as black ink decodes back to it (PIL's decode of the
        // same file to L, within 1 level). It used to fail with "Unsupported color conversion request".
        let cmyk = try readGrayImage(path: codecs + "cmyk.jpg")
        XCTAssertEqual(cmyk.width, 4)
        let pilCMYK: [UInt8] = [0, 50, 100, 150, 200, 251, 255, 1, 17, 34, 67, 136]
        for (ours, theirs) in zip(cmyk.pixels, pilCMYK) { XCTAssertLessThanOrEqual(abs(Int(ours) - Int(theirs)), 1, "\(cmyk.pixels)") }
    }

    func testDecodeFromBytesMatchesPath() throws {
        let bytes = try readBytes(codecs + "rgb8.png")
        XCTAssertEqual(try decodeGrayImage(bytes: bytes, source: "memory").pixels, grayOfRGB)
    }

    func testPNGRoundTripGrayAndRGB() throws {
        let dir = try temporaryDirectory(self)
        let image = GrayImage(width: 4, height: 3, pixels: gray)
        try writePNG(image, to: dir + "/gray.png")
        XCTAssertEqual(try readGrayImage(path: dir + "/gray.png"), image)
        var rgb = RGBImage(gray: image)
        rgb.pixels[0] = 255  // pixel 0 becomes pure red: luma 76
        try writePNG(rgb, to: dir + "/rgb.png")
        var expected = gray
        expected[0] = 76
        XCTAssertEqual(try readGrayImage(path: dir + "/rgb.png").pixels, expected)
        // No temporary files left next to the outputs.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["gray.png", "rgb.png"])
    }

    /// Asserts that decoding `bytes` throws a SonoQuantError naming `source` whose problem contains `words`.
    func assertRejected(_ bytes: [UInt8], _ words: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try temporaryDirectory(self)
        let path = dir + "/bad.img"
        try writeBytes(bytes, to: path)
        XCTAssertThrowsError(try readGrayImage(path: path), file: file, line: line) { error in
            guard let error = error as? SonoQuantError else { return XCTFail("not a SonoQuantError: \(error)", file: file, line: line) }
            XCTAssertEqual(error.subject, path, file: file, line: line)
            XCTAssertTrue(error.problem.lowercased().contains(words.lowercased()), "\(error.problem)", file: file, line: line)
        }
    }

    func testBadFilesAreRejectedWithClearErrors() throws {
        let png = try readBytes(Fixtures.hc18Frames + "/000_HC.png")
        let jpeg = try readBytes(codecs + "rgb.jpg")
        try assertRejected([], "empty")
        try assertRejected(Array("hello, not an image".utf8), "not a PNG or JPEG")
        try assertRejected(Array(png.prefix(8)), "PNG")                   // signature only
        try assertRejected(Array(png.prefix(png.count / 2)), "truncated")  // half the data
        var flipped = png
        flipped[png.count / 2] ^= 0xFF                                   // CRC / zlib failure
        try assertRejected(flipped, "PNG")
        try assertRejected(Array(jpeg.prefix(2)), "JPEG")
        try assertRejected(Array(jpeg.prefix(jpeg.count / 2)), "JPEG")    // libjpeg only warns; we refuse
        var garbled = jpeg
        for i in (jpeg.count / 2)..<(jpeg.count / 2 + 40) { garbled[i] = 0xFF }
        try assertRejected(garbled, "JPEG")
        XCTAssertThrowsError(try readGrayImage(path: codecs + "no-such-file.png")) { error in
            XCTAssertEqual((error as? SonoQuantError)?.problem, "no such file")
        }
        XCTAssertThrowsError(try readGrayImage(path: codecs)) { error in
            XCTAssertTrue((error as? SonoQuantError)?.problem.contains("directory") ?? false)
        }
    }

    func testAbsurdDimensionsAreRejectedBeforeDecoding() throws {
        // A valid PNG signature + IHDR claiming 20000 x 20000 gray pixels + the start of an IDAT.
        var ihdr = Array("IHDR".utf8) + bigEndian(20000) + bigEndian(20000) + [8, 0, 0, 0, 0]
        ihdr += bigEndian(crc32(ihdr))
        var idat = Array("IDAT".utf8) + [0x78, 0x9C]
        idat += bigEndian(crc32(idat))
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + bigEndian(13) + ihdr + bigEndian(2) + idat
        try assertRejected(png, "larger than the limit")
        // A JPEG whose SOF0 frame header is patched to 60000 x 60000.
        var jpeg = try readBytes(codecs + "gray.jpg")
        let sof = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        for offset in [sof + 5, sof + 7] { jpeg[offset] = 0xEA; jpeg[offset + 1] = 0x60 }
        try assertRejected(jpeg, "larger than the limit")
    }

    /// A cheap in-process mutation sweep (the real fuzzing is libFuzzer's, see the deploy docs): 6000
    /// bit flips, byte changes, truncations and insertions of the fixture images must each decode to a
    /// consistent image or throw, never trap. (60,000 ran clean once; 6,000 keep the test under 0.1 s.)
    func testMutatedImagesDecodeOrThrowNeverTrap() throws {
        var random = SplitMix64(seed: 1)
        let names = ["gray8.png", "gray16.png", "rgb8.png", "rgba8.png", "palette.png", "bilevel.png",
                     "gray_alpha.png", "gray.jpg", "rgb.jpg", "progressive.jpg"]
        let originals = try names.map { try readBytes(codecs + $0) }
        var decoded = 0
        for i in 0..<6000 {
            var bytes = originals[i % originals.count]
            let kind = random.next() % 4
            for _ in 0..<(Int(random.next() % 4) + 1) where !bytes.isEmpty {
                let position = Int(random.next() % UInt64(bytes.count))
                switch kind {
                case 0: bytes[position] ^= UInt8(1 << (random.next() % 8))
                case 1: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                case 2: bytes = Array(bytes.prefix(position))
                default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
                }
            }
            if let image = try? decodeGrayImage(bytes: bytes, source: "mutant \(i)") {
                XCTAssertEqual(image.pixels.count, image.width * image.height)
                decoded += 1
            }
        }
        XCTAssertGreaterThan(decoded, 0)  // some mutations (e.g. in ancillary chunks) are harmless
    }
}
