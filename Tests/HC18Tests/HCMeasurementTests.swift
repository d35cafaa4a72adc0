import Foundation
import HC18
import ImageCodecs
import Synchronization
import XCTest
import TestSupport

final class HCMeasurementTests: XCTestCase {
    func testEllipseFitRecoversASyntheticEllipseExactly() throws {
        let truth = Ellipse(centerX: 412.3, centerY: 250.7, semiMajor: 180.5, semiMinor: 131.25, angle: 0.6)
        let points = (0..<90).map { k -> (x: Double, y: Double) in
            let t = Double(k) * 2 * Double.pi / 90
            let u = truth.semiMajor * cos(t), v = truth.semiMinor * sin(t)
            return (truth.centerX + u * cos(truth.angle) - v * sin(truth.angle),
                    truth.centerY + u * sin(truth.angle) + v * cos(truth.angle))
        }
        let fit = try XCTUnwrap(fitEllipse(points))
        XCTAssertEqual(fit.centerX, truth.centerX, accuracy: 1e-7)
        XCTAssertEqual(fit.centerY, truth.centerY, accuracy: 1e-7)
        XCTAssertEqual(fit.semiMajor, truth.semiMajor, accuracy: 1e-7)
        XCTAssertEqual(fit.semiMinor, truth.semiMinor, accuracy: 1e-7)
        XCTAssertEqual(fit.angle, truth.angle, accuracy: 1e-9)  // angles are reported in [0, pi)
        // Too few or collinear points: no ellipse.
        XCTAssertNil(fitEllipse(Array(points.prefix(5))))
        XCTAssertNil(fitEllipse((0..<20).map { (Double($0), 2 * Double($0) + 1) }))
    }

    func testRamanujanCircumference() {
        // A circle: exactly 2 pi r. An ellipse 10 x 5: 48.44224110 (series value of the perimeter).
        XCTAssertEqual(Ellipse(centerX: 0, centerY: 0, semiMajor: 3, semiMinor: 3, angle: 0).circumference, 6 * .pi, accuracy: 1e-12)
        XCTAssertEqual(Ellipse(centerX: 0, centerY: 0, semiMajor: 10, semiMinor: 5, angle: 0).circumference, 48.4422411, accuracy: 1e-6)
    }

    /// HC from each fixture annotation outline vs the CSV (which is rounded to 0.01 mm).
    func testFixtureOutlinesReproduceTheCSV() throws {
        let samples = try readPixelSizeCSV(directory: Fixtures.hc18Frames)
        XCTAssertEqual(samples.count, 32)
        var errors: [Double] = []
        for sample in samples {
            let outline = try readGrayImage(path: sample.annotationPath)
            let m = try XCTUnwrap(measureOutlineHC(outline: outline, pixelSizeMM: sample.pixelSizeMM), sample.name)
            errors.append(abs(m.hcMM - sample.referenceHCmm))
        }
        XCTAssertLessThan(errors.max()!, 0.03)
        XCTAssertLessThan(errors.reduce(0, +) / Double(errors.count), 0.01)
        // One frame by value: 000_HC, CSV 44.30 mm.
        let first = try XCTUnwrap(measureOutlineHC(outline: readGrayImage(path: Fixtures.hc18Frames + "/000_HC_Annotation.png"),
                                                   pixelSizeMM: samples[0].pixelSizeMM))
        XCTAssertEqual(first.hcMM, 44.30, accuracy: 0.01)
    }

    /// The same on all 999 outlines of the full data set (about 3 s in release); skipped without it.
    func testAll999OutlinesReproduceTheCSV() throws {
        let directory = Fixtures.sharedDirectory + "/hc18/training_set"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: directory), "\(directory) is absent")
        let samples = try readPixelSizeCSV(directory: directory)
        XCTAssertEqual(samples.count, 999)
        let sharedErrors = Mutex([Double](repeating: .infinity, count: samples.count))
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            for i in stride(from: part, to: samples.count, by: 2) {
                guard let outline = try? readGrayImage(path: samples[i].annotationPath),
                      let m = measureOutlineHC(outline: outline, pixelSizeMM: samples[i].pixelSizeMM) else { continue }
                sharedErrors.withLock { $0[i] = abs(m.hcMM - samples[i].referenceHCmm) }
            }
        }
        let errors = sharedErrors.withLock { $0 }
        XCTAssertLessThanOrEqual(errors.max()!, 0.2)
        XCTAssertLessThanOrEqual(errors.reduce(0, +) / Double(errors.count), 0.05)
    }

    func testFilledMaskOfADrawnOutline() throws {
        // Draw a 2-px ellipse outline with a gap, fill it, compare the area with pi a b.
        let truth = Ellipse(centerX: 60.2, centerY: 40.7, semiMajor: 45, semiMinor: 28, angle: 0.3)
        var outline = GrayImage(width: 128, height: 90, pixels: [UInt8](repeating: 0, count: 128 * 90))
        for y in 0..<90 {
            for x in 0..<128 {
                let r = truth.normalizedRadiusSquared(x: Double(x), y: Double(y)).squareRoot()
                let nearLine = abs(r - 1) * truth.semiMinor < 1.0
                let inGap = x > 85  // the right end of the outline is missing
                if nearLine && !inGap { outline[x, y] = 255 }
            }
        }
        let mask = try XCTUnwrap(filledMask(outline: outline))
        let area = Double(mask.reduce(0) { $0 + Int($1) })
        // The mask is the ellipse through the line's middle: area about pi a b.
        XCTAssertEqual(area, Double.pi * 45 * 28, accuracy: 0.01 * Double.pi * 45 * 28)
        XCTAssertEqual(mask[40 * 128 + 60], 1)  // centre
        XCTAssertEqual(mask[50 * 128 + 95], 1)  // inside, behind the gap
        XCTAssertEqual(mask[0], 0)
        XCTAssertNil(filledMask(outline: GrayImage(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 16))))
    }

    func testFixtureMaskAreaMatchesItsEllipse() throws {
        let outline = try readGrayImage(path: Fixtures.hc18Frames + "/010_2HC_Annotation.png")
        let mask = try XCTUnwrap(filledMask(outline: outline))
        let ellipse = try XCTUnwrap(fitEllipse(outlinePoints(outline)))
        let area = Double(mask.reduce(0) { $0 + Int($1) })
        let ellipseArea = Double.pi * ellipse.semiMajor * ellipse.semiMinor
        // Pixel centres inside the ellipse: the area within a fraction of the perimeter.
        XCTAssertEqual(area, ellipseArea, accuracy: 0.1 * ellipse.circumference)
        // A point on the outline's outer edge is not head; the ellipse's centre is.
        XCTAssertEqual(mask[Int(ellipse.centerY.rounded()) * outline.width + Int(ellipse.centerX.rounded())], 1)
    }

    /// The row-run rasterizer marks exactly the pixels the per-pixel test marks: rotated, thin, tiny, cut by
    /// the frame, outside it, and the 999 annotations' own ellipses are covered by the CSV tests above.
    func testRasterizeEllipseByRowsEqualsThePerPixelTest() {
        var random = SplitMix64(seed: 7)
        func uniform(_ range: ClosedRange<Double>) -> Double {
            range.lowerBound + (range.upperBound - range.lowerBound) * Double(random.next() >> 11) / Double(1 << 53)
        }
        var ellipses = [Ellipse(centerX: 95.5, centerY: 63.5, semiMajor: 0.5, semiMinor: 0.5, angle: 0),
                        Ellipse(centerX: 10, centerY: 10, semiMajor: 300, semiMinor: 0.3, angle: 0.01),
                        Ellipse(centerX: -500, centerY: 60, semiMajor: 100, semiMinor: 80, angle: 1),
                        Ellipse(centerX: 96, centerY: 64, semiMajor: 40, semiMinor: 40, angle: 0)]  // centres on pixel centres
        for _ in 0..<300 {
            ellipses.append(Ellipse(centerX: uniform(-50...250), centerY: uniform(-50...180), semiMajor: uniform(0.2...220),
                                    semiMinor: uniform(0.2...150), angle: uniform(-4...4)))
        }
        for ellipse in ellipses {
            XCTAssertEqual(rasterizeEllipse(ellipse, width: 192, height: 128), rasterizeEllipseByPixel(ellipse, width: 192, height: 128),
                           "\(ellipse)")
        }
    }

    /// The review flag: a clean head passes; a head cut in half, or a prediction split into two large
    /// regions, is flagged with its reason.
    func testDoubtfulMeasurementsAreFlaggedForReview() throws {
        let truth = Ellipse(centerX: 400, centerY: 270, semiMajor: 220, semiMinor: 160, angle: 0.4)
        let small = resizeMask(rasterizeEllipse(truth, width: 800, height: 540), width: 800, height: 540, toWidth: 192, toHeight: 128)
        let clean = try XCTUnwrap(measureHC(mask: small, width: 192, height: 128, originalWidth: 800, originalHeight: 540, pixelSizeMM: 0.1))
        XCTAssertLessThan(clean.fitResidual, 0.005)
        XCTAssertEqual(clean.regionFraction, 1)
        XCTAssertFalse(clean.needsReview, "\(clean.reviewReasons)")

        var half = small
        for y in 0..<128 { for x in 96..<192 { half[y * 192 + x] = 0 } }
        let cut = try XCTUnwrap(measureHC(mask: half, width: 192, height: 128, originalWidth: 800, originalHeight: 540, pixelSizeMM: 0.1))
        XCTAssertGreaterThan(cut.fitResidual, HCMeasurement.fitResidualLimit)
        XCTAssertEqual(cut.reviewReasons.count, 1)
        XCTAssertTrue(cut.reviewReasons[0].contains("off an ellipse"), cut.reviewReasons[0])

        let one = Ellipse(centerX: 48, centerY: 64, semiMajor: 40, semiMinor: 30, angle: 0)
        let other = Ellipse(centerX: 144, centerY: 64, semiMajor: 38, semiMinor: 30, angle: 0)
        let two = zip(rasterizeEllipse(one, width: 192, height: 128), rasterizeEllipse(other, width: 192, height: 128)).map { max($0, $1) }
        let split = try XCTUnwrap(measureHC(mask: two, width: 192, height: 128, originalWidth: 192, originalHeight: 128, pixelSizeMM: 0.1))
        XCTAssertEqual(split.regionFraction, 0.51, accuracy: 0.02)
        XCTAssertTrue(split.needsReview)
        XCTAssertTrue(split.reviewReasons.contains { $0.contains("largest region only") }, "\(split.reviewReasons)")
    }

    func testMeasureHCOfASquashedMaskMapsBackToTheOriginalFrame() throws {
        // An ellipse in an 800x540 frame, rasterised, squashed to 192x128 like a prediction would be;
        // measured there and mapped back, HC must be close to the true circumference.
        let truth = Ellipse(centerX: 400, centerY: 270, semiMajor: 220, semiMinor: 160, angle: 0.4)
        let full = rasterizeEllipse(truth, width: 800, height: 540)
        let small = resizeMask(full, width: 800, height: 540, toWidth: 192, toHeight: 128)
        let m = try XCTUnwrap(measureHC(mask: small, width: 192, height: 128, originalWidth: 800, originalHeight: 540, pixelSizeMM: 0.1))
        XCTAssertEqual(m.hcMM, truth.circumference * 0.1, accuracy: 0.005 * truth.circumference * 0.1)
        XCTAssertEqual(m.ellipse.centerX, 400, accuracy: 2)
        XCTAssertEqual(m.ellipse.centerY, 270, accuracy: 2)
        // A stray blob does not change the measurement: only the largest 8-connected region counts.
        var noisy = small
        noisy[2 * 192 + 2] = 1
        noisy[3 * 192 + 3] = 1
        let withBlob = try XCTUnwrap(measureHC(mask: noisy, width: 192, height: 128, originalWidth: 800, originalHeight: 540, pixelSizeMM: 0.1))
        XCTAssertEqual(withBlob.ellipse, m.ellipse)
        XCTAssertEqual(withBlob.hcMM, m.hcMM)
        XCTAssertEqual(withBlob.regionFraction, Double(m.regionPixels) / Double(m.regionPixels + 2))
        // Nothing to measure: nil, never a crash.
        XCTAssertNil(measureHC(mask: [UInt8](repeating: 0, count: 192 * 128), width: 192, height: 128,
                               originalWidth: 800, originalHeight: 540, pixelSizeMM: 0.1))
        XCTAssertNil(measureHC(mask: [UInt8](repeating: 1, count: 192 * 128), width: 192, height: 128,
                               originalWidth: 800, originalHeight: 540, pixelSizeMM: 0.1))
    }

    func testLargestRegionIsEightConnected() {
        // Two diagonal pixels are one region (8-connectivity); the pair beats the single pixel.
        let mask: [UInt8] = [1, 0, 0, 1,
                             0, 1, 0, 0,
                             0, 0, 0, 0]
        let (region, pixels) = largestRegion(mask: mask, width: 4, height: 3)
        XCTAssertEqual(pixels, 2)
        XCTAssertEqual(region, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    }

    /// A perfect prediction: every fixture frame's filled mask squashed to 192x128 measures the CSV's
    /// HC closely (on the 200 paper test frames: mean 0.047 mm, max 0.23 mm, docs/DATA.md).
    func testSquashedGroundTruthMasksMeasureTheReferenceHC() throws {
        let samples = try readPixelSizeCSV(directory: Fixtures.hc18Frames)
        let prepared = try loadSamples(samples, width: 192, height: 128, threads: 2)
        let errors = try prepared.map { p -> Double in
            let m = try XCTUnwrap(measureHC(mask: p.mask, width: 192, height: 128, originalWidth: p.originalWidth,
                                            originalHeight: p.originalHeight, pixelSizeMM: p.sample.pixelSizeMM))
            return abs(m.hcMM - p.sample.referenceHCmm)
        }
        XCTAssertLessThan(errors.reduce(0, +) / Double(errors.count), 0.1)
        XCTAssertLessThan(errors.max()!, 0.3)
    }
}
