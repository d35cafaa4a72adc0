import Foundation
import QuantEngine

/// Adam exactly as PyTorch's `torch.optim.Adam` (no weight decay, no amsgrad):
///   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
///   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// Only trainable parameters have moments; frozen ones are never touched.
public struct Adam {
    public var learningRate: Float
    public let beta1: Float = 0.9
    public let beta2: Float = 0.999
    public let epsilon: Float = 1e-8
    /// Steps taken so far (t of the bias correction).
    public var step: Int = 0
    /// First and second moments by parameter name.
    public var firstMoment: [String: [Float]] = [:]
    public var secondMoment: [String: [Float]] = [:]

    public init(learningRate: Float) { self.learningRate = learningRate }

    /// Parameters with at least this many values are updated by all threads, one after the other; the smaller
    /// ones (most of MobileNetV2's, e.g. every BatchNorm vector) together in one pass, one parameter per work
    /// item. Each value is updated on its own, so the result does not depend on the thread count.
    static let parallelCount = 1 << 16

    public mutating func update(_ parameters: [Parameter], threads: Int = 1) {
        step += 1
        let correction1 = 1 - Double(beta1).power(step)
        let correction2 = 1 - Double(beta2).power(step)
        let rule = Rule(beta1: beta1, beta2: beta2, epsilon: epsilon, stepSize: Float(Double(learningRate) / correction1),
                        correction2Root: Float(correction2.squareRoot()))
        let trainable = parameters.filter(\.trainable)
        // Taken out of the dictionaries while updated: mutating a copy that the dictionary still holds would copy
        // the whole array every step.
        let moments = trainable.map { p in
            Moments(first: firstMoment.removeValue(forKey: p.name) ?? [Float](repeating: 0, count: p.value.count),
                    second: secondMoment.removeValue(forKey: p.name) ?? [Float](repeating: 0, count: p.value.count))
        }
        let small = trainable.indices.filter { trainable[$0].value.count < Self.parallelCount }
        parallelChunks(small.count, threads: threads) { items in
            for i in items { moments[small[i]].update(trainable[small[i]], rule: rule, threads: 1) }
        }
        for i in trainable.indices where trainable[i].value.count >= Self.parallelCount {
            moments[i].update(trainable[i], rule: rule, threads: threads)
        }
        for (p, moment) in zip(trainable, moments) {
            firstMoment[p.name] = moment.first
            secondMoment[p.name] = moment.second
        }
    }

    /// One step's constants: p -= stepSize * m / (sqrt(v) / correction2Root + eps).
    struct Rule {
        let beta1, beta2, epsilon, stepSize, correction2Root: Float
    }

    /// One parameter's moments while an update runs (a class, so that work items on other threads update it in place).
    final class Moments: @unchecked Sendable {
        var first: [Float]
        var second: [Float]
        init(first: [Float], second: [Float]) { self.first = first; self.second = second }

        func update(_ p: Parameter, rule: Rule, threads: Int) {
            let (b1, b2, eps, stepSize, correction2Root) = (rule.beta1, rule.beta2, rule.epsilon, rule.stepSize, rule.correction2Root)
            first.withUnsafeMutableBufferPointer { mb in
            second.withUnsafeMutableBufferPointer { vb in
            p.value.withUnsafeMutableBufferPointer { pb in
            p.gradient.withUnsafeBufferPointer { gb in
                let count = pb.count, chunk = 1 << 14
                parallelChunks((count + chunk - 1) / chunk, threads: threads) { chunks in
                    for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) {
                        let g = gb[i]
                        mb[i] = b1 * mb[i] + (1 - b1) * g
                        vb[i] = b2 * vb[i] + (1 - b2) * g * g
                        let denominator = vb[i].squareRoot() / correction2Root + eps
                        pb[i] -= stepSize * mb[i] / denominator
                    }
                }
            }}}}
        }
    }
}

extension Double {
    /// self^n for a non-negative integer n (bias corrections: 0.9^t, 0.999^t).
    func power(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<n { result *= self }
        return result
    }
}

/// How the learning rate moves over a run. `constant` is the paper's protocol (Adam at one rate for every
/// step). `cosine` anneals from the rate to 0 over the run's last step, lr_t = lr (1 + cos(pi t / T)) / 2
/// with t the steps taken and T the run's steps: the late, small steps settle the weights instead of
/// leaving them where the last noisy batches pushed them.
public enum LearningRateSchedule: String, CaseIterable, Sendable {
    case constant
    case cosine

    /// The rate for the update after `stepsTaken` of `totalSteps` steps.
    public func rate(base: Float, stepsTaken: Int, totalSteps: Int) -> Float {
        switch self {
        case .constant:
            return base
        case .cosine:
            let progress = Double(min(stepsTaken, totalSteps)) / Double(max(totalSteps, 1))
            return Float(Double(base) * 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
