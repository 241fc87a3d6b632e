DROP INDEX job_orders_due;
