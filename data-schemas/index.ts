export * from './common';
export * from './config';
export * from './d-lan';
export * from './d-rob';
export * from './manifest';
export * from './workflows';
export * from './uri';
export * from './issues';
