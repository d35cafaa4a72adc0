import HC18
import XCTest

final class GestationalAgeTests: XCTestCase {
    /// Hadlock 1984's formula, computed by hand: GA = 8.96 + 0.540 HC + 0.0003 HC^3 (HC in cm).
    func testFormulaValues() {
        XCTAssertEqual(Hadlock1984.weeks(hcMM: 175), 8.96 + 9.45 + 1.6078125, accuracy: 1e-12)  // 20.02 weeks
        XCTAssertEqual(Hadlock1984.weeks(hcMM: 100), 14.66, accuracy: 1e-12)
        XCTAssertEqual(Hadlock1984.weeks(hcMM: 300), 8.96 + 16.2 + 8.1, accuracy: 1e-12)   // 33.26 weeks
        // The range the formula was fitted on, 14 to 42 weeks, in HC.
        XCTAssertEqual(Hadlock1984.weeks(hcMM: Hadlock1984.fittedHCmm.lowerBound), 14, accuracy: 0.01)
        XCTAssertEqual(Hadlock1984.weeks(hcMM: Hadlock1984.fittedHCmm.upperBound), 42, accuracy: 0.01)
    }

    /// The only HC table attributed to Hadlock (1984) found (medicalalgorithms.com, "head circumference") gives
    /// the mean HC at each week: a size chart, not a dating table. The dating formula applied to its HCs
    /// gives ages from 0.07 weeks (at 40) to 1.42 weeks (at 33.5) later than the table's weeks: where head
    /// growth slows, fetuses of many ages share one HC and age regressed on HC lies above the inverted size
    /// curve (docs/DATA.md, "Gestational age"). These rows pin that known, bounded difference.
    func testAgainstThePublishedSizeTable() {
        let rows: [(weeks: Double, hcCM: Double)] = [(14, 9.7), (20, 17.7), (24, 22.4), (28, 26.6), (30, 28.4),
                                                     (33.5, 31.2), (34, 31.5), (36, 32.8), (40, 34.6)]
        for row in rows {
            let difference = Hadlock1984.weeks(hcMM: row.hcCM * 10) - row.weeks
            XCTAssertTrue((0...1.45).contains(difference), "week \(row.weeks): formula \(difference) weeks later")
        }
    }

    func testEstimateRangeNoteAndWeeksAndDays() throws {
        let inRange = try XCTUnwrap(Hadlock1984.estimate(hcMM: 224))  // 8.96 + 12.096 + 3.3718 = 24.43 weeks
        XCTAssertEqual(inRange.weeksAndDays, "24w 3d")
        XCTAssertTrue(inRange.withinFormulaRange)
        XCTAssertNil(inRange.note)
        let small = try XCTUnwrap(Hadlock1984.estimate(hcMM: 60))
        XCTAssertFalse(small.withinFormulaRange)
        XCTAssertTrue(try XCTUnwrap(small.note).contains("below 89.4 mm"))
        let large = try XCTUnwrap(Hadlock1984.estimate(hcMM: 400))
        XCTAssertTrue(try XCTUnwrap(large.note).contains("above 357.7 mm"))
        XCTAssertNil(Hadlock1984.estimate(hcMM: 0))
        XCTAssertNil(Hadlock1984.estimate(hcMM: .nan))
        XCTAssertNil(Hadlock1984.estimate(hcMM: -5))
        XCTAssertEqual(Hadlock1984.weeksAndDays(13.999), "14w 0d")
    }
}
