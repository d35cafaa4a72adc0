// Gestational age from head circumference.
//
// Formula: Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis of
// multiple fetal growth parameters. Radiology 1984;152:497-501. Its regression of menstrual age on HC:
//   GA (weeks) = 8.96 + 0.540 HC + 0.0003 HC^3,   HC in cm.
// It is a dating formula (age regressed on the measurement), the direction needed to estimate age from a
// measured head, fitted on 361 fetuses between 14 and 42 menstrual weeks; that is the range in which it
// holds: HC 89.4 to 357.7 mm. Outside it the number is an extrapolation and says so.
//
// A second formula circulates under Hadlock's name (AJR 143:97, with a -0.0040 HC^2 term) and differs
// by up to a week; its full coefficients are not in any source this project could check, so it is not
// offered. Checked against a published table: docs/DATA.md, "Gestational age".
import Foundation

/// A gestational-age estimate for one measured head.
public struct GestationalAge: Codable, Equatable, Sendable {
    /// Menstrual age in weeks (decimal).
    public var weeks: Double
    /// The same age as sonographers write it, e.g. "24w 3d".
    public var weeksAndDays: String
    /// Whether the HC lies in the range the formula was fitted on (14 to 42 weeks).
    public var withinFormulaRange: Bool
    /// The formula, for the record.
    public var formula: String
    /// Why the number is doubtful (absent when the HC is in range).
    public var note: String?
}

public enum Hadlock1984 {
    public static let formula = "Hadlock 1984 (Radiology 152:497): GA = 8.96 + 0.540 HC + 0.0003 HC^3, HC in cm"

    /// The study's ages (14 to 42 menstrual weeks) and the head circumferences the formula gives them.
    public static let fittedWeeks: ClosedRange<Double> = 14...42
    public static let fittedHCmm: ClosedRange<Double> = 89.4...357.7

    /// Menstrual age in weeks for a head circumference in mm.
    public static func weeks(hcMM: Double) -> Double {
        let hcCM = hcMM / 10
        return 8.96 + 0.540 * hcCM + 0.0003 * hcCM * hcCM * hcCM
    }

    /// The estimate with its range check; nil for a circumference that is not a positive finite number.
    public static func estimate(hcMM: Double) -> GestationalAge? {
        guard hcMM.isFinite, hcMM > 0 else { return nil }
        let ga = weeks(hcMM: hcMM)
        var note: String? = nil
        if hcMM < fittedHCmm.lowerBound {
            note = String(format: "HC %.1f mm is below %.1f mm (14 weeks), the smallest head the formula was fitted on: the age is an extrapolation", hcMM, fittedHCmm.lowerBound)
        } else if hcMM > fittedHCmm.upperBound {
            note = String(format: "HC %.1f mm is above %.1f mm (42 weeks), the largest head the formula was fitted on: the age is an extrapolation", hcMM, fittedHCmm.upperBound)
        }
        return GestationalAge(weeks: ga, weeksAndDays: weeksAndDays(ga), withinFormulaRange: note == nil, formula: formula, note: note)
    }

    /// "24w 3d": whole weeks and the remaining whole days (rounded to the nearest day).
    public static func weeksAndDays(_ weeks: Double) -> String {
        let days = Int((weeks * 7).rounded())
        return "\(days / 7)w \(days % 7)d"
    }
}
