/**
 * Metrics and traces of the project's processes (README, "Metrics and traces"), both through what
 * Temporal ships: the SDK's runtime serves Prometheus metrics (its own and the pipelines',
 * data-schemas/metrics.ts), and @temporalio/interceptors-opentelemetry carries one trace from the
 * client through the workflow to its activities, exported over OTLP/HTTP.
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';
import { Runtime, type ActivityInterceptorsFactory, type InjectedSinks, type WorkerOptions } from '@temporalio/worker';
import { createRequire } from 'node:module';
import { HISTOGRAM_BUCKETS } from '../data-schemas/metrics';
import type { EnvConfig } from '../data-schemas/config';

/**
 * Installs the SDK runtime of a worker process: with `metricsAddress` (VLA_METRICS_ADDRESS) it
 * serves Prometheus metrics at `http://<address>/metrics`. Must run before the first connection
 * (the runtime is created once per process); without an address nothing is installed.
 */
export function installWorkerRuntime(metricsAddress: string | undefined): void {
  if (metricsAddress === undefined) return;
  try {
    Runtime.install({
      telemetryOptions: {
        metrics: { prometheus: { bindAddress: metricsAddress, histogramBucketOverrides: HISTOGRAM_BUCKETS } },
      },
    });
  } catch (err) {
    throw new Error(`VLA_METRICS_ADDRESS=${metricsAddress}: cannot serve metrics there (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** What a worker adds to its options to trace: the interceptors and the sink of workflow spans. */
export interface WorkerTracing {
  activityInterceptors: ActivityInterceptorsFactory[];
  workflowModules: string[];
  sinks: InjectedSinks<OpenTelemetrySinks>;
}

export interface Tracing {
  serviceName: string;
  worker: WorkerTracing;
  clientInterceptors: { workflow: WorkflowClientInterceptor[] };
  /** Sends the spans still buffered and stops exporting (call before the process exits). */
  shutdown(): Promise<void>;
}

const requireHere = createRequire(import.meta.url);

/**
 * Starts exporting spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the exporter reads
 * it and the other standard OTEL_EXPORTER_OTLP_* variables, and sends to `<endpoint>/v1/traces`);
 * returns undefined, having installed nothing, when it is not. The service is OTEL_SERVICE_NAME or
 * `defaultServiceName` (`vla-worker-<kind>`, `vla-cli`).
 */
export function startTracing(env: Pick<EnvConfig, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>, defaultServiceName: string): Tracing | undefined {
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) return undefined;
  const serviceName = env.OTEL_SERVICE_NAME ?? defaultServiceName;
  const resource = Resource.default().merge(new Resource({ 'service.name': serviceName }));
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // The client interceptor injects the context of the active span: that needs a context manager.
  provider.register({ contextManager: new AsyncLocalStorageContextManager() });
  return {
    serviceName,
    worker: {
      activityInterceptors: [
        (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
      ],
      workflowModules: [requireHere.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')],
      // Workflow spans are made in the workflow sandbox and leave it through this sink.
      sinks: { exporter: makeWorkflowExporter(spanProcessor, resource) },
    },
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    shutdown: () => provider.shutdown(),
  };
}

/**
 * A worker's options with tracing added: the tracing activity interceptors first (the span covers
 * the whole activity, the project's own interceptors included), the workflow interceptor module,
 * the span sink. Without tracing the options are returned unchanged.
 */
export function withTracing(options: WorkerOptions, tracing: WorkerTracing | undefined): WorkerOptions {
  if (!tracing) return options;
  return {
    ...options,
    interceptors: {
      ...options.interceptors,
      activity: [...tracing.activityInterceptors, ...(options.interceptors?.activity ?? [])],
      workflowModules: [...(options.interceptors?.workflowModules ?? []), ...tracing.workflowModules],
    },
    sinks: { ...options.sinks, ...tracing.sinks },
  };
}
