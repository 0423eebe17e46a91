// iOS (Swift), LiteRT: pod 'TensorFlowLiteSwift'; model_float32.tflite in the app bundle.
// The model has one input (transactions, float32 [n, 30]) and one output
// (fraud_probability, float32 [n, 1]), so index 0 is each of them.
import Foundation
import TensorFlowLite

final class FraudScorer {
    private let interpreter: Interpreter
    private let threshold: Float32

    init(threshold: Float32) throws {
        let path = Bundle.main.path(forResource: "model_float32", ofType: "tflite")!
        interpreter = try Interpreter(modelPath: path)
        self.threshold = threshold
    }

    /// Raw transactions: 30 floats each, in the order Time, V1..V28, Amount.
    func fraudProbabilities(_ transactions: [[Float32]]) throws -> [Float32] {
        try interpreter.resizeInput(at: 0, to: Tensor.Shape([transactions.count, 30]))
        try interpreter.allocateTensors()
        let rows = transactions.flatMap { $0 }
        try interpreter.copy(rows.withUnsafeBufferPointer { Data(buffer: $0) }, toInputAt: 0)
        try interpreter.invoke()
        let output = try interpreter.output(at: 0)
        return output.data.withUnsafeBytes { Array($0.bindMemory(to: Float32.self)) }
    }

    func isFraud(_ transaction: [Float32]) throws -> Bool {
        try fraudProbabilities([transaction])[0] >= threshold
    }
}
