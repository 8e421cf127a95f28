// A kerasrnn micro bundle on an ESP32-S3: feeds the prime, samples by the contract (kerasrnn_sample.c) and
// prints the text over the serial console, one sample per seed, forever. Build: docs/micro.md.
//
// The step model runs on TensorFlow Lite for Microcontrollers; its float32 states are carried from each
// next_ output to its input between invokes (SPEC.md, "Micro bundle"), as kerasrnn-edge does on a PC, so
// `kerasrnn-edge sample DIR --runtime tflite-micro --prime ... --seed N` shows what this board writes.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "kerasrnn_model.h"
#include "kerasrnn_sample.h"

namespace {

constexpr char kPrime[] = "ROMEO:";
constexpr int kLength = 500;  // tokens per sample
constexpr double kTemperature = 0.8;

alignas(16) uint8_t arena[KERASRNN_ARENA_BYTES];
float states[KERASRNN_NUM_STATES][KERASRNN_STATE_SIZE];
double work[2 * KERASRNN_VOCAB_SIZE];    // krnn_choose's scratch
int32_t order[2 * KERASRNN_VOCAB_SIZE];
tflite::MicroInterpreter *interpreter;

void reset(void *) {
  memcpy(states, kerasrnn_start_state, sizeof states);
}

const float *feed(void *, int32_t token) {
  interpreter->input(KERASRNN_INPUT_TOKEN)->data.i32[0] = token;
  for (int s = 0; s < KERASRNN_NUM_STATES; s++) {
    memcpy(interpreter->input(kerasrnn_state_input[s])->data.f, states[s], sizeof states[s]);
  }
  if (interpreter->Invoke() != kTfLiteOk) {
    printf("\nkerasrnn: invoke failed\n");
    abort();
  }
  for (int s = 0; s < KERASRNN_NUM_STATES; s++) {
    memcpy(states[s], interpreter->output(kerasrnn_state_output[s])->data.f, sizeof states[s]);
  }
  return interpreter->output(KERASRNN_OUTPUT_LOGITS)->data.f;
}

}  // namespace

extern "C" void app_main(void) {
  static tflite::MicroMutableOpResolver<KERASRNN_NUM_OPS> resolver;
  KERASRNN_ADD_OPS(resolver);
  static tflite::MicroInterpreter static_interpreter(tflite::GetModel(kerasrnn_model), resolver, arena,
                                                     sizeof arena);
  interpreter = &static_interpreter;
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    printf("kerasrnn: the model does not fit in its arena of %d bytes\n", KERASRNN_ARENA_BYTES);
    return;
  }
  printf("kerasrnn: arena %u of %d bytes used\n", (unsigned)interpreter->arena_used_bytes(), KERASRNN_ARENA_BYTES);

  krnn_generator g;
  memset(&g, 0, sizeof g);
  g.model.reset = reset;
  g.model.feed = feed;
  g.model.start_token = KERASRNN_START_TOKEN;
  g.vocab.bytes = KERASRNN_VOCAB_BYTES;
  g.vocab.size = KERASRNN_VOCAB_SIZE;
  g.vocab.code_points = kerasrnn_vocab;
  g.params.temperature = kTemperature;
  g.params.top_p = 1.0;
  g.work = work;
  g.order = order;
  for (uint64_t seed = 0;; seed++) {
    if (krnn_begin(&g, kPrime, strlen(kPrime), seed) != KRNN_OK) {
      printf("kerasrnn: the prime has a character outside the vocabulary (byte %u)\n", (unsigned)g.error_at);
      return;
    }
    printf("--- seed %llu\n%s", (unsigned long long)seed, kPrime);
    int64_t started = esp_timer_get_time();
    for (int n = 0; n < kLength; n++) {
      char piece[KRNN_MAX_PIECE];
      fwrite(piece, 1, krnn_next(&g, n + 1 < kLength, piece, nullptr), stdout);
      if (n % 64 == 63) {
        vTaskDelay(1);  // let the idle task feed the watchdog
      }
    }
    int64_t micros = esp_timer_get_time() - started;
    printf("\n--- %d tokens in %lld ms (%lld us per token)\n", kLength, (long long)(micros / 1000),
           (long long)(micros / kLength));
    fflush(stdout);
    vTaskDelay(pdMS_TO_TICKS(1000));
  }
}
