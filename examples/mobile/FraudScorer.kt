// Android (Kotlin), LiteRT: implementation("com.google.ai.edge.litert:litert:<version>")
// model_float32.tflite in src/main/assets, stored uncompressed:
//   android { androidResources { noCompress += "tflite" } }
import android.content.res.AssetManager
import java.io.FileInputStream
import java.nio.channels.FileChannel
import org.tensorflow.lite.Interpreter

class FraudScorer(assets: AssetManager, private val threshold: Float) {
    private val interpreter = assets.openFd("model_float32.tflite").use { fd ->
        val bytes = FileInputStream(fd.fileDescriptor).channel
            .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
        Interpreter(bytes)
    }

    /** Raw transactions: 30 floats each, in the order Time, V1..V28, Amount. */
    fun fraudProbabilities(transactions: Array<FloatArray>): FloatArray {
        val probabilities = Array(transactions.size) { FloatArray(1) }
        interpreter.runSignature(
            mapOf("transactions" to transactions),
            mapOf("fraud_probability" to probabilities),
            "serve",
        )
        return FloatArray(transactions.size) { probabilities[it][0] }
    }

    fun isFraud(transaction: FloatArray): Boolean =
        fraudProbabilities(arrayOf(transaction))[0] >= threshold
}
